// anvil::nn: modules, layers, initialisation and Sequential (losses live in nn/loss*.h).
#pragma once
#include "anvil/nn/activation.h"
#include "anvil/nn/conv.h"
#include "anvil/nn/dropout.h"
#include "anvil/nn/embedding.h"
#include "anvil/nn/init.h"
#include "anvil/nn/linear.h"
#include "anvil/nn/module.h"
#include "anvil/nn/normalization.h"
#include "anvil/nn/pooling.h"
#include "anvil/nn/sequential.h"
#include "anvil/nn/shape.h"
#include "anvil/nn/size2.h"
