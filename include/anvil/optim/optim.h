// Optimizers, gradient clipping and learning-rate schedulers (anvil::optim).
#pragma once
#include "anvil/optim/adadelta.h"
#include "anvil/optim/adagrad.h"
#include "anvil/optim/adam.h"
#include "anvil/optim/clip_grad.h"
#include "anvil/optim/lbfgs.h"
#include "anvil/optim/lr_scheduler.h"
#include "anvil/optim/nadam.h"
#include "anvil/optim/one_cycle_lr.h"
#include "anvil/optim/optimizer.h"
#include "anvil/optim/reduce_lr_on_plateau.h"
#include "anvil/optim/rmsprop.h"
#include "anvil/optim/sgd.h"
