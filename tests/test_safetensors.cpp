// safetensors: round trips, interchange with the Python safetensors package, damaged files.
#include <unistd.h>

#include <fstream>

#include "anvil/core/file.h"
#include "anvil/io/safetensors.h"
#include "support/check.h"
#include "support/oracle.h"

using namespace anvil;

namespace {
std::string temp_path(const std::string& name) {
  return "/tmp/anvil_test_" + std::to_string(getpid()) + "_" + name;
}
}  // namespace

TEST(Safetensors, RoundTripsEveryDType) {
  StateDict d;
  for (DType dt : {kFloat32, kFloat64, kFloat16, kBFloat16, kInt32, kInt64, kUInt8, kBool})
    d[std::string("t_") + dtype_name(dt)] = test::uniform({3, 2}, 1, -5, 5).to(dt);
  d["scalar"] = scalar_tensor(3.5);
  d["empty"] = zeros({0, 4});
  d["view"] = test::uniform({4, 5}, 2).t();  // non-contiguous source
  std::string p = temp_path("rt.safetensors");
  io::save_safetensors(d, p, {{"format", "pt"}});
  std::map<std::string, std::string> meta;
  StateDict back = io::load_safetensors(p, &meta);
  EXPECT_EQ(meta["format"], "pt");
  ASSERT_EQ(back.size(), d.size());
  for (const auto& [k, v] : d) {
    ASSERT_TRUE(back.count(k)) << k;
    EXPECT_EQ(back[k].dtype(), v.dtype()) << k;
    EXPECT_TRUE(equal(back[k], v)) << k;
  }
  unlink(p.c_str());
}

TEST(Safetensors, InterchangesWithThePythonPackage) {
  std::string from_py = temp_path("py.safetensors"), from_us = temp_path("us.safetensors");
  auto& oracle = test::TorchOracle::get();
  ASSERT_TRUE(oracle.available()) << oracle.why_unavailable();
  Tensor w = test::uniform({4, 3}, 3, -1, 1, kFloat32);
  oracle.run_code("from safetensors.torch import save_file\n"
                  "save_file({'fc.weight': a, 'fc.bias': torch.arange(4, dtype=torch.float64),"
                  " 'ids': torch.tensor([1, 2, 3])}, '" + from_py + "')\nout = a",
                  {w});
  StateDict d = io::load_safetensors(from_py);
  EXPECT_TRUE(equal(d.at("fc.weight"), w));
  EXPECT_TRUE(equal(d.at("fc.bias"), arange(0, 4, 1, kFloat64)));
  EXPECT_EQ(d.at("ids").to_vector<int64_t>(), (std::vector<int64_t>{1, 2, 3}));

  io::save_safetensors({{"x", w}, {"h", w.to(kBFloat16)}}, from_us);
  auto outs = oracle.run_code("from safetensors.torch import load_file\n"
                              "d = load_file('" + from_us + "')\nout = [d['x'], d['h'].float()]");
  EXPECT_TRUE(equal(outs[0], w));
  EXPECT_TRUE(equal(outs[1], w.to(kBFloat16).to(kFloat32)));
  unlink(from_py.c_str());
  unlink(from_us.c_str());
}

TEST(Safetensors, DamagedFilesGiveErrorsNamingTheFile) {
  std::string p = temp_path("bad.safetensors");
  io::save_safetensors({{"a", ones({16})}, {"b", zeros({2, 2})}}, p);
  std::string good = read_file(p);
  auto check = [&](const std::string& bytes, const std::string& what) {
    write_file_atomic(p, bytes);
    EXPECT_TRUE(test::throws_with<IOError>([&] { io::load_safetensors(p); }, {p, what}));
  };
  check(good.substr(0, 5), "shorter than the 8-byte header");
  check(good.substr(0, good.size() - 4), "spans bytes");  // truncated data
  std::string bad_json = good;
  bad_json[9] = '#';
  check(bad_json, "not valid JSON");
  std::string long_header = good;
  long_header[5] = char(0x7f);  // absurd header length
  check(long_header, "the header claims");
  check(good + "xx", "trailing bytes");
  EXPECT_TRUE(test::throws_with<IOError>([] { io::load_safetensors("/nonexistent/x.safetensors"); },
                                         {"/nonexistent/x.safetensors"}));
  unlink(p.c_str());
}
