// ModelBuilder: shape inference, errors at the layer that breaks, summary, JSON round trip.
#include <unistd.h>

#include "anvil/core/file.h"
#include "anvil/nn/model_builder.h"
#include "support/check.h"

using namespace anvil;

TEST(ModelBuilder, InfersShapesAndParameterCounts) {
  nn::ModelBuilder b({4, 1, 28, 28});
  b.conv2d(32, 3).relu().maxpool2d(2).conv2d(64, 3, 1, 1).batchnorm().relu().flatten().dense(10);
  EXPECT_EQ(b.output_shape(), (Shape{4, 10}));
  // conv 1->32 3x3: 288+32; conv 32->64 3x3: 18432+64; bn: 128; dense 64*13*13 -> 10.
  EXPECT_EQ(b.num_parameters(), 320 + 18496 + 128 + 64 * 13 * 13 * 10 + 10);
  auto model = b.build();
  EXPECT_EQ(model->size(), 8);
  EXPECT_EQ(model->num_parameters(), b.num_parameters());
  Tensor y = (*model)(test::uniform({4, 1, 28, 28}, 1, 0, 1, kFloat32));
  EXPECT_EQ(y.shape(), (Shape{4, 10}));
  // Names follow PyTorch's Sequential.
  auto names = model->named_parameters();
  EXPECT_EQ(names.front().first, "0.weight");
  EXPECT_EQ(names.back().first, "7.bias");
  // Every build is a fresh model.
  EXPECT_FALSE(equal(b.build()->parameters()[0], model->parameters()[0]));
}

TEST(ModelBuilder, SummaryListsLayersShapesAndTotals) {
  nn::ModelBuilder b({8, 784});
  b.dense(128).relu().dropout(0.2).dense(10);
  std::string s = b.summary();
  for (const char* want : {"dense", "relu", "dropout", "[8, 128]", "[8, 10]", "100480", "1290",
                           "total parameters: 101770"})
    EXPECT_NE(s.find(want), std::string::npos) << want << " missing from\n" << s;
}

TEST(ModelBuilder, RejectsImpossibleStacksAtTheBreakingLayer) {
  EXPECT_TRUE(test::throws_with<ShapeError>(
      [] { nn::ModelBuilder({1, 1, 4, 4}).conv2d(8, 3).maxpool2d(2).conv2d(8, 3); },
      {"ModelBuilder", "layer 2", "conv2d", "[1, 8, 1, 1]"}));
  EXPECT_TRUE(test::throws_with<ShapeError>([] { nn::ModelBuilder({2, 10}).conv2d(4, 3); },
                                            {"layer 0", "conv2d", "4", "[2, 10]"}));
  EXPECT_TRUE(test::throws_with<ValueError>([] { nn::ModelBuilder({2, 3}).add({{"type", "conv3d"}}); },
                                            {"unknown layer type", "conv3d", "dense"}));
  EXPECT_TRUE(test::throws_with<ValueError>([] { nn::ModelBuilder({2, 3}).add({{"type", "dense"}}); },
                                            {"dense", "units"}));
  EXPECT_TRUE(test::throws_with<ValueError>([] { nn::ModelBuilder({}); }, {"batch dimension"}));
}

TEST(ModelBuilder, JsonRoundTripGivesTheSameArchitecture) {
  nn::ModelBuilder b({2, 3, 16, 16});
  b.conv2d(8, {3, 5}, 2, 1).leaky_relu(0.2).avgpool2d(2).global_avgpool2d().dense(4).log_softmax();
  nlohmann::json j = b.to_json();
  EXPECT_EQ(j["input_shape"], nlohmann::json({3, 16, 16}));
  nn::ModelBuilder c = nn::ModelBuilder::from_json(j, 2);
  EXPECT_EQ(c.to_json(), j);
  EXPECT_EQ(c.output_shape(), b.output_shape());
  EXPECT_EQ(c.summary(), b.summary());
  std::string p = "/tmp/anvil_test_arch_" + std::to_string(getpid()) + ".json";
  b.save(p);
  EXPECT_EQ(nn::ModelBuilder::load(p, 2).to_json(), j);
  write_file_atomic(p, "{\"input_shape\": [3], \"layers\": [");
  EXPECT_TRUE(test::throws_with<ValueError>([&] { nn::ModelBuilder::load(p); }, {p, "not valid JSON"}));
  write_file_atomic(p, R"({"input_shape": [3], "layers": [{"type": "dense", "units": "ten"}]})");
  EXPECT_TRUE(test::throws_with<ValueError>([&] { nn::ModelBuilder::load(p); }, {p, "units", "wrong type"}));
  unlink(p.c_str());
}

TEST(ModelBuilder, LayerNormAndRmsNormOverTheLastDim) {
  nn::ModelBuilder b({2, 5, 16});
  b.dense(12).layer_norm().gelu().rms_norm(1e-6).dense(3).layer_norm(1e-3, true, false).rms_norm();
  EXPECT_EQ(b.output_shape(), (Shape{2, 5, 3}));
  // dense 16 -> 12: 204; layer_norm: 24; rms_norm: 12; dense 12 -> 3: 39; layer_norm without
  // bias: 3; rms_norm: 3.
  EXPECT_EQ(b.num_parameters(), 204 + 24 + 12 + 39 + 3 + 3);
  auto model = b.build();
  auto names = model->named_parameters();
  EXPECT_EQ(names[2].first, "1.weight");
  EXPECT_EQ(names[3].first, "1.bias");
  EXPECT_EQ(names[4].first, "3.weight");
  EXPECT_EQ(model->str().find("LayerNorm((12,), eps=1e-05, elementwise_affine=true, bias=true)") !=
                std::string::npos,
            true)
      << model->str();
  nlohmann::json j = b.to_json();
  EXPECT_EQ(j["layers"][1], nlohmann::json({{"type", "layer_norm"}, {"eps", 1e-5},
                                             {"elementwise_affine", true}, {"bias", true}}));
  EXPECT_TRUE(j["layers"][6]["eps"].is_null());
  EXPECT_EQ(nn::ModelBuilder::from_json(j, 2).to_json(), j);
  Tensor y = (*model)(test::uniform({2, 5, 16}, 1, -1, 1, kFloat32));
  EXPECT_EQ(y.shape(), (Shape{2, 5, 3}));
  EXPECT_TRUE(test::throws_with<ShapeError>([] { nn::ModelBuilder({4}).layer_norm(); },
                                            {"layer 0", "layer_norm", "[4]"}));
}
