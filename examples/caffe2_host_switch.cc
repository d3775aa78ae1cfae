// A Caffe2 C++ host that keeps its own workspace, blobs, tensors, executor and operators, and
// switches two operator families to caffe2rs: the DB family (CreateDB, TensorProtosDBInput,
// with prefetching) and the BlobsQueue family. The lines marked [switch] are all the host adds:
// 6 lines of C++ here, plus `find_package(caffe2rs)` and linking caffe2rs::caffe2rs in CMake.
//
// Built against the stand-in Caffe2 headers (cpp_tests/standin/include: same include paths and
// calls as PyTorch 1.x caffe2), since there is no Caffe2 build here; with a real Caffe2, drop
// that include path and link Caffe2. Usage: caffe2_host_switch [sample.minidb]
#include <caffe2/core/operator.h>
#include <caffe2/core/workspace.h>
#include <caffe2/utils/proto_utils.h>
#include <caffe2rs/caffe2_bridge.h>  // [switch]

#include <cstdio>
#include <string>
#include <vector>

C2RS_CAFFE2_DEFINE_TYPES();                 // [switch] once per program
C2RS_CAFFE2_REGISTER_DB_FAMILY();           // [switch] CreateDB, TensorProtosDBInput
C2RS_CAFFE2_REGISTER_BLOBS_QUEUE_FAMILY();  // [switch] the 8 BlobsQueue operators

namespace {
const void* produced = nullptr;  // the image buffer the DB input made, for the zero-copy check
}

// The host's own operators, unchanged: one notes the batch the DB input made, one prints the
// batch that came out of the queue.
class NoteBatch final : public caffe2::Operator<caffe2::CPUContext> {
 public:
  using caffe2::Operator<caffe2::CPUContext>::Operator;
  bool RunOnDevice() override {
    produced = Input(0).raw_data();
    return true;
  }
};

class PrintBatch final : public caffe2::Operator<caffe2::CPUContext> {
 public:
  using caffe2::Operator<caffe2::CPUContext>::Operator;
  bool RunOnDevice() override {
    const caffe2::Tensor& image = Input(0);
    const auto* pixels = image.data<uint8_t>();
    const auto* labels = Input(1).data<int32_t>();
    const auto* names = static_cast<const std::string*>(Input(2).raw_data());
    std::printf("batch %d:", run_++);
    for (int64_t i = 0; i < image.sizes()[0]; ++i) {
      std::printf(" %s/%d/%d", names[i].c_str(), labels[i], pixels[i * 6]);
    }
    std::printf(" (same buffer as the DB batch: %s)\n", image.raw_data() == produced ? "yes" : "no");
    return true;
  }

 private:
  int run_ = 0;
};

REGISTER_CPU_OPERATOR(NoteBatch, NoteBatch);
REGISTER_CPU_OPERATOR(PrintBatch, PrintBatch);

int main(int argc, char** argv) {
  const std::string db = argc > 1 ? argv[1] : C2RS_EXAMPLE_DB;
  using caffe2::CreateOperatorDef;
  using caffe2::MakeArgument;
  try {
    caffe2::Workspace ws;
    caffe2::NetDef init, main;
    init.set_name("init");
    main.set_name("main");
    *init.add_op() = CreateOperatorDef("CreateDB", "", {}, {"reader"},
        {MakeArgument<std::string>("db", db), MakeArgument<std::string>("db_type", "minidb")});
    *init.add_op() = CreateOperatorDef("CreateBlobsQueue", "", {}, {"queue"},
        {MakeArgument<int>("capacity", 2), MakeArgument<int>("num_blobs", 3)});
    *main.add_op() = CreateOperatorDef("TensorProtosDBInput", "", {"reader"},
        {"image", "label", "name"}, {MakeArgument<int>("batch_size", 4)});
    *main.add_op() = CreateOperatorDef("NoteBatch", "", {"image"}, {});
    *main.add_op() = CreateOperatorDef("EnqueueBlobs", "", {"queue", "image", "label", "name"},
        {"image", "label", "name"});
    *main.add_op() = CreateOperatorDef("DequeueBlobs", "", {"queue"}, {"b_image", "b_label", "b_name"});
    *main.add_op() = CreateOperatorDef("PrintBatch", "", {"b_image", "b_label", "b_name"}, {});
    c2rs::caffe2_bridge::switch_engine(&init, {"CreateDB", "CreateBlobsQueue"});  // [switch]
    c2rs::caffe2_bridge::switch_engine(&main, {"TensorProtosDBInput", "EnqueueBlobs", "DequeueBlobs"});  // [switch]
    ws.RunNetOnce(init);
    ws.CreateNet(main);
    for (int i = 0; i < 3; ++i) ws.RunNet("main");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
