// Option checks shared by several optimizers.
#pragma once
#include <string>

#include "anvil/optim/optimizer.h"

namespace anvil::optim {
// lr, eps, weight_decay >= 0 and betas in [0, 1) (Adam, AdamW, NAdam); messages start with name.
void check_adam_options(const std::string& name, const Options& o);
}  // namespace anvil::optim
