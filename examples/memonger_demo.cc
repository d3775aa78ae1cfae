// Example host: plan the memory of a net with the caffe2rs memonger. Reads a serialized NetDef
// and its TensorShapes (the bundled small CNN by default, or the two files given as arguments),
// runs the size-aware planner, checks the renamed net with the verifier, and prints the report:
// lower bounds, the names the plan uses, their bytes, the one-arena plan, and a few offsets.
#include <caffe2rs.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

namespace {

std::string read_file(const char* path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::cerr << "cannot read " << path << "\n";
    std::exit(2);
  }
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Fails loudly with the library's message.
void check(int32_t status, const char* what) {
  if (status != C2RS_OK) {
    std::cerr << what << " failed (" << status << "): " << c2rs_last_error_message() << "\n";
    std::exit(1);
  }
}

std::string take(c2rs_buffer* buf) {
  std::string s(reinterpret_cast<const char*>(c2rs_buffer_data(buf)), c2rs_buffer_len(buf));
  c2rs_buffer_free(buf);
  return s;
}

// The raw JSON value after "key": (numbers, null, or a short string) — enough for a report
// whose keys are unique at the top level.
std::string field(const std::string& json, const std::string& key) {
  const std::string pat = "\"" + key + "\":";
  size_t p = json.find(pat);
  if (p == std::string::npos) return "?";
  p += pat.size();
  size_t e = p;
  if (json[e] == '"') {
    e = json.find('"', p + 1);
    return json.substr(p + 1, e - p - 1);
  }
  while (e < json.size() && json[e] != ',' && json[e] != '}') ++e;
  return json.substr(p, e - p);
}

}  // namespace

int main(int argc, char** argv) {
  const char* net_path = argc > 2 ? argv[1] : C2RS_MEMONGER_NET;
  const char* shapes_path = argc > 2 ? argv[2] : C2RS_MEMONGER_SHAPES;
  const std::string net = read_file(net_path);
  const std::string shapes = read_file(shapes_path);

  c2rs_memory_plan* plan = nullptr;
  check(c2rs_memonger_plan(reinterpret_cast<const uint8_t*>(net.data()), net.size(),
                           reinterpret_cast<const uint8_t*>(shapes.data()), shapes.size(),
                           nullptr, 0, &plan),
        "c2rs_memonger_plan");

  c2rs_buffer* buf = nullptr;
  check(c2rs_memory_plan_report(plan, &buf), "c2rs_memory_plan_report");
  const std::string report = take(buf);
  check(c2rs_memory_plan_net(plan, &buf), "c2rs_memory_plan_net");
  const std::string renamed = take(buf);
  uint64_t arena = 0;
  check(c2rs_memory_plan_arena_bytes(plan, &arena), "c2rs_memory_plan_arena_bytes");

  std::cout << "net: " << net_path << "\n";
  std::cout << "ops " << field(report, "ops") << ", activations " << field(report, "activations")
            << ", plannable " << field(report, "plannable") << "\n";
  std::cout << "naive bytes " << field(report, "naive_bytes") << "\n";
  std::cout << "lower bound: " << field(report, "lb_count") << " live blobs, "
            << field(report, "lb_bytes") << " bytes\n";
  std::cout << "caffe2 fast pass: " << field(report, "c2_fast_names") << " names, "
            << field(report, "c2_fast_bytes") << " bytes\n";
  std::cout << "plan: " << field(report, "names") << " names (" << field(report, "name_algorithm")
            << "), " << field(report, "name_bytes") << " bytes = "
            << field(report, "name_bytes_over_lb_bytes") << " x lb\n";
  std::cout << "arena: " << arena << " bytes (" << field(report, "arena_algorithm") << ") = "
            << field(report, "arena_bytes_over_lb_bytes") << " x lb\n";

  for (const char* blob : {"conv1", "relu1", "pool1", "softmax"}) {
    uint64_t offset = 0, bytes = 0;
    if (c2rs_memory_plan_offset(plan, blob, &offset, &bytes) == C2RS_OK) {
      std::cout << "  " << blob << " @ " << offset << " (" << bytes << " bytes)\n";
    }
  }

  const int32_t verdict =
      c2rs_memonger_verify(reinterpret_cast<const uint8_t*>(net.data()), net.size(),
                           reinterpret_cast<const uint8_t*>(renamed.data()), renamed.size(),
                           nullptr, 0);
  std::cout << "verify: " << (verdict == C2RS_OK ? "OK" : c2rs_last_error_message()) << "\n";
  c2rs_memory_plan_free(plan);
  return verdict == C2RS_OK ? 0 : 1;
}
