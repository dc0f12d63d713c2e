// An MLP on Fashion-MNIST with the ModelBuilder and the Trainer.
//
// 784 -> 256 -> 128 -> 10 with ReLU and dropout, Adam (lr 1e-3) with cosine decay, 20
// epochs of batches of 128. Reaches about 89% test accuracy in well under a minute on two
// CPU cores. Run: build/examples/mlp_fashion_mnist [epochs]
#include <cstdlib>
#include <iostream>

#include "anvil/anvil.h"

using namespace anvil;

int main(int argc, char** argv) {
  const int64_t epochs = argc > 1 ? std::atoll(argv[1]) : 20;
  manual_seed(0);
  auto train_set = std::make_shared<data::FashionMNIST>(data::FashionMNIST::kDefaultRoot, true);
  auto test_set = std::make_shared<data::FashionMNIST>(data::FashionMNIST::kDefaultRoot, false);

  nn::ModelBuilder arch({128, 1, 28, 28});
  arch.flatten().dense(256).relu().dropout(0.2).dense(128).relu().dense(10);
  std::cout << arch.summary();
  auto model = arch.build();

  std::shared_ptr<optim::Optimizer> opt = optim::make_optimizer("adam", model->parameters(), 1e-3);
  train::Trainer trainer(model, opt, nn::make_loss("cross_entropy"));
  trainer.add_callback(std::make_shared<train::ProgressBar>());
  trainer.add_callback(std::make_shared<train::LRSchedulerCallback>(
      std::make_shared<optim::CosineAnnealingLR>(*opt, epochs)));

  data::DataLoader train_loader(train_set, {.batch_size = 128, .shuffle = true, .seed = 0});
  data::DataLoader test_loader(test_set, {.batch_size = 1000});
  trainer.fit(train_loader, epochs, &test_loader);
  std::cout << "test accuracy " << trainer.evaluate(test_loader).at("accuracy") << "\n";
  return 0;
}
