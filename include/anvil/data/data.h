// Datasets, the DataLoader and the DevicePrefetcher (anvil::data).
#pragma once
#include "anvil/data/csv.h"
#include "anvil/data/dataloader.h"
#include "anvil/data/dataset.h"
#include "anvil/data/device_prefetcher.h"
#include "anvil/data/fashion_mnist.h"
#include "anvil/data/idx.h"
#include "anvil/data/sampler.h"
#include "anvil/data/series.h"
#include "anvil/data/tensor_dataset.h"
