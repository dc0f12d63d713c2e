#include <algorithm>
#include <cctype>

#include "anvil/core/error.h"
#include "anvil/optim/adadelta.h"
#include "anvil/optim/adagrad.h"
#include "anvil/optim/adam.h"
#include "anvil/optim/lbfgs.h"
#include "anvil/optim/nadam.h"
#include "anvil/optim/rmsprop.h"
#include "anvil/optim/sgd.h"

namespace anvil::optim {

std::unique_ptr<Optimizer> make_optimizer(const std::string& name, std::vector<Tensor> params,
                                          double lr) {
  std::string n = name;
  std::transform(n.begin(), n.end(), n.begin(), [](unsigned char c) { return std::tolower(c); });
  if (n == "sgd") return std::make_unique<SGD>(std::move(params), SGDOptions{.lr = lr});
  if (n == "adam") return std::make_unique<Adam>(std::move(params), AdamOptions{.lr = lr});
  if (n == "adamw") return std::make_unique<AdamW>(std::move(params), AdamWOptions{.lr = lr});
  if (n == "rmsprop") return std::make_unique<RMSprop>(std::move(params), RMSpropOptions{.lr = lr});
  if (n == "adagrad") return std::make_unique<Adagrad>(std::move(params), AdagradOptions{.lr = lr});
  if (n == "adadelta")
    return std::make_unique<Adadelta>(std::move(params), AdadeltaOptions{.lr = lr});
  if (n == "nadam") return std::make_unique<NAdam>(std::move(params), NAdamOptions{.lr = lr});
  if (n == "lbfgs") return std::make_unique<LBFGS>(std::move(params), LBFGSOptions{.lr = lr});
  throw ValueError(detail::cat("make_optimizer: unknown optimizer \"", name,
                               "\" (expected one of: sgd, adam, adamw, rmsprop, adagrad, "
                               "adadelta, nadam, lbfgs)"));
}

}  // namespace anvil::optim
