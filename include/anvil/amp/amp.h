// Mixed precision: autocast, loss scaling and the TF32 switch.
#pragma once
#include "anvil/amp/autocast.h"
#include "anvil/amp/grad_scaler.h"
#include "anvil/amp/precision.h"
