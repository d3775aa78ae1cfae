// Workspaces, operators and nets through the C ABI. Ports Caffe2's
// caffe2/core/workspace_test.cc (BlobAccess, Sharing, BlobMapping), the python workspace
// tests (feed/fetch, RunOperatorOnce, CreateNet/RunNet, CppEnforceAsException), the
// GetAllBlobNames cases of spec/workspace.md, host-registered operators and a thread test.
// Changes: protobuf messages are encoded by a tiny writer below (no libprotobuf needed);
// blob identity is compared through c2rs_workspace_blob_id.
#include "caffe2rs.h"
#include "c2rs_test_proto.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

using c2rs_test::FloatArg;
using c2rs_test::IntArg;
using c2rs_test::IntsArg;
using c2rs_test::Op;
using c2rs_test::Pb;

Pb Net(const std::string& name, const std::string& type, std::vector<Pb> ops,
       std::vector<std::string> external_input = {}, int64_t num_workers = 0) {
  Pb p;
  p.str(1, name);
  for (auto& o : ops) p.msg(2, o);
  if (!type.empty()) p.str(3, type);
  if (num_workers > 0) p.i64(4, num_workers);
  for (auto& e : external_input) p.str(7, e);
  return p;
}

const uint8_t* Bytes(const Pb& p) { return reinterpret_cast<const uint8_t*>(p.bytes.data()); }

// ------------------------------------------------------------------ helpers
std::string LastError() { return c2rs_last_error_message(); }

struct Ws {
  c2rs_workspace* ws = nullptr;
  explicit Ws(c2rs_workspace* parent = nullptr) { EXPECT_EQ(c2rs_workspace_new(parent, &ws), C2RS_OK); }
  ~Ws() { c2rs_workspace_free(ws); }
  Ws(const Ws&) = delete;
  Ws& operator=(const Ws&) = delete;
  operator c2rs_workspace*() const { return ws; }
};

std::vector<std::string> ToVector(c2rs_string_list* list) {
  std::vector<std::string> out;
  for (size_t i = 0; i < c2rs_string_list_len(list); ++i) out.emplace_back(c2rs_string_list_get(list, i));
  c2rs_string_list_free(list);
  return out;
}

std::vector<std::string> Names(c2rs_workspace* ws, bool include_shared) {
  c2rs_string_list* list = nullptr;
  EXPECT_EQ(c2rs_workspace_blob_names(ws, include_shared, &list), C2RS_OK);
  return ToVector(list);
}

bool Has(c2rs_workspace* ws, const char* name) {
  bool out = false;
  EXPECT_EQ(c2rs_workspace_has_blob(ws, name, &out), C2RS_OK);
  return out;
}

const void* Id(c2rs_workspace* ws, const char* name) {
  const void* id = nullptr;
  EXPECT_EQ(c2rs_workspace_blob_id(ws, name, &id), C2RS_OK);
  return id;
}

int32_t RunOp(c2rs_workspace* ws, const Pb& op) {
  return c2rs_workspace_run_operator_once(ws, Bytes(op), op.bytes.size());
}

std::vector<std::string> FetchStrings(c2rs_workspace* ws, const char* name) {
  c2rs_tensor* t = nullptr;
  EXPECT_EQ(c2rs_workspace_fetch(ws, name, &t), C2RS_OK) << LastError();
  std::vector<std::string> out;
  int64_t n = 0;
  EXPECT_EQ(c2rs_tensor_numel(t, &n), C2RS_OK);
  for (int64_t i = 0; i < n; ++i) {
    const uint8_t* p = nullptr;
    size_t len = 0;
    EXPECT_EQ(c2rs_tensor_string_at(t, static_cast<size_t>(i), &p, &len), C2RS_OK);
    out.emplace_back(reinterpret_cast<const char*>(p), len);
  }
  c2rs_tensor_free(t);
  return out;
}

void FeedFloats(c2rs_workspace* ws, const char* name, std::vector<int64_t> dims, float value) {
  c2rs_tensor* t = nullptr;
  ASSERT_EQ(c2rs_tensor_new(C2RS_DTYPE_FLOAT, dims.data(), dims.size(), &t), C2RS_OK);
  void* data = nullptr;
  ASSERT_EQ(c2rs_tensor_mutable_data(t, &data), C2RS_OK);
  int64_t n = 0;
  ASSERT_EQ(c2rs_tensor_numel(t, &n), C2RS_OK);
  for (int64_t i = 0; i < n; ++i) static_cast<float*>(data)[i] = value;
  ASSERT_EQ(c2rs_workspace_feed(ws, name, t), C2RS_OK) << LastError();
  c2rs_tensor_free(t);
}

std::vector<float> FetchFloats(c2rs_workspace* ws, const char* name, std::vector<int64_t>* dims = nullptr) {
  c2rs_tensor* t = nullptr;
  EXPECT_EQ(c2rs_workspace_fetch(ws, name, &t), C2RS_OK) << LastError();
  if (t == nullptr) return {};
  int64_t n = 0;
  EXPECT_EQ(c2rs_tensor_numel(t, &n), C2RS_OK);
  const void* data = nullptr;
  EXPECT_EQ(c2rs_tensor_data(t, &data), C2RS_OK);
  std::vector<float> out(static_cast<const float*>(data), static_cast<const float*>(data) + n);
  if (dims != nullptr) {
    const int64_t* d = nullptr;
    size_t nd = 0;
    EXPECT_EQ(c2rs_tensor_dims(t, &d, &nd), C2RS_OK);
    dims->assign(d, d + nd);
  }
  c2rs_tensor_free(t);
  return out;
}

}  // namespace

// ------------------------------------------------------------------ workspace_test.cc
TEST(Workspace, BlobAccess) {
  Ws ws;
  EXPECT_FALSE(Has(ws, "nonexisting"));
  EXPECT_EQ(Id(ws, "nonexisting"), nullptr);
  EXPECT_EQ(Id(ws, "newblob"), nullptr);
  ASSERT_EQ(c2rs_workspace_create_blob(ws, "newblob"), C2RS_OK);
  EXPECT_NE(Id(ws, "newblob"), nullptr);
  EXPECT_TRUE(Has(ws, "newblob"));
  EXPECT_FALSE(Has(ws, "nonexisting"));
  const void* id = Id(ws, "newblob");
  FeedFloats(ws, "newblob", {1}, 10.0f);
  // Creating again, locally or not, keeps the blob and its content.
  ASSERT_EQ(c2rs_workspace_create_blob(ws, "newblob"), C2RS_OK);
  ASSERT_EQ(c2rs_workspace_create_local_blob(ws, "newblob"), C2RS_OK);
  EXPECT_EQ(Id(ws, "newblob"), id);
  EXPECT_EQ(FetchFloats(ws, "newblob"), std::vector<float>{10.0f});
  bool removed = true;
  ASSERT_EQ(c2rs_workspace_remove_blob(ws, "nonexisting", &removed), C2RS_OK);
  EXPECT_FALSE(removed);
  ASSERT_EQ(c2rs_workspace_remove_blob(ws, "newblob", &removed), C2RS_OK);
  EXPECT_TRUE(removed);
  EXPECT_FALSE(Has(ws, "newblob"));
  EXPECT_EQ(Id(ws, "newblob"), nullptr);
}

TEST(Workspace, SharingBetweenParentAndChild) {
  Ws parent;
  Ws child(parent.ws);
  ASSERT_EQ(c2rs_workspace_create_blob(parent, "a"), C2RS_OK);
  EXPECT_TRUE(Has(child, "a"));
  EXPECT_EQ(Id(child, "a"), Id(parent, "a"));
  ASSERT_EQ(c2rs_workspace_create_blob(child, "b"), C2RS_OK);
  EXPECT_FALSE(Has(parent, "b"));
  ASSERT_EQ(c2rs_workspace_create_blob(parent, "b"), C2RS_OK);
  EXPECT_NE(Id(child, "b"), Id(parent, "b"));
  ASSERT_EQ(c2rs_workspace_create_blob(child, "a"), C2RS_OK);
  EXPECT_EQ(Id(child, "a"), Id(parent, "a"));
  ASSERT_EQ(c2rs_workspace_create_local_blob(child, "a"), C2RS_OK);
  EXPECT_NE(Id(child, "a"), Id(parent, "a"));
  // Shadowing lists the name twice; local-only lists it once.
  EXPECT_EQ(Names(child, true), (std::vector<std::string>{"a", "b", "a", "b"}));
  EXPECT_EQ(Names(child, false), (std::vector<std::string>{"a", "b"}));
}

TEST(Workspace, ChildKeepsParentAlive) {
  c2rs_workspace* parent = nullptr;
  ASSERT_EQ(c2rs_workspace_new(nullptr, &parent), C2RS_OK);
  FeedFloats(parent, "p", {2}, 3.0f);
  Ws child(parent);
  c2rs_workspace_free(parent);
  EXPECT_EQ(FetchFloats(child, "p"), (std::vector<float>{3.0f, 3.0f}));
}

TEST(Workspace, BlobMapping) {
  Ws parent;
  ASSERT_EQ(c2rs_workspace_create_blob(parent, "a"), C2RS_OK);
  const char* names[] = {"inner_a"};
  const char* parent_names[] = {"a"};
  c2rs_workspace* child = nullptr;
  ASSERT_EQ(c2rs_workspace_new_with_mapping(parent, names, parent_names, 1, &child), C2RS_OK);
  EXPECT_FALSE(Has(child, "a"));
  EXPECT_TRUE(Has(child, "inner_a"));
  EXPECT_EQ(Id(child, "inner_a"), Id(parent, "a"));
  Ws other;
  ASSERT_EQ(c2rs_workspace_create_blob(other, "b"), C2RS_OK);
  const char* names_b[] = {"inner_b"};
  const char* parent_b[] = {"b"};
  ASSERT_EQ(c2rs_workspace_add_blob_mapping(child, other, names_b, parent_b, 1, false), C2RS_OK);
  EXPECT_TRUE(Has(child, "inner_b"));
  EXPECT_FALSE(Has(child, "b"));
  EXPECT_TRUE(Has(child, "inner_a"));
  c2rs_workspace_free(child);
  const char* bad[] = {"missing"};
  c2rs_workspace* none = nullptr;
  EXPECT_EQ(c2rs_workspace_new_with_mapping(parent, names, bad, 1, &none), C2RS_NOT_FOUND);
  EXPECT_NE(LastError().find("Invalid parent workspace blob missing"), std::string::npos);
  EXPECT_EQ(c2rs_workspace_new_with_mapping(nullptr, names, parent_names, 1, &none), C2RS_ENFORCE_NOT_MET);
  EXPECT_EQ(none, nullptr);
}

TEST(Workspace, RenameKeepsIdentity) {
  Ws ws;
  ASSERT_EQ(c2rs_workspace_create_blob(ws, "old"), C2RS_OK);
  ASSERT_EQ(c2rs_workspace_create_blob(ws, "taken"), C2RS_OK);
  const void* id = Id(ws, "old");
  EXPECT_EQ(c2rs_workspace_rename_blob(ws, "missing", "x"), C2RS_NOT_FOUND);
  EXPECT_EQ(c2rs_workspace_rename_blob(ws, "old", "taken"), C2RS_ALREADY_EXISTS);
  ASSERT_EQ(c2rs_workspace_rename_blob(ws, "old", "new"), C2RS_OK);
  EXPECT_EQ(Id(ws, "new"), id);
  EXPECT_FALSE(Has(ws, "old"));
}

// ------------------------------------------------------------------ python workspace
TEST(Workspace, FeedFetchKeepsShapeAndValues) {
  Ws ws;
  FeedFloats(ws, "testblob", {1, 2, 3, 4}, 1.0f);
  std::vector<int64_t> dims;
  auto values = FetchFloats(ws, "testblob", &dims);
  EXPECT_EQ(dims, (std::vector<int64_t>{1, 2, 3, 4}));
  EXPECT_EQ(values, std::vector<float>(24, 1.0f));
  FeedFloats(ws, "testblob", {1, 2, 3, 4}, 2.0f);
  EXPECT_EQ(FetchFloats(ws, "testblob"), std::vector<float>(24, 2.0f));
  FeedFloats(ws, "empty", {2, 0, 3}, 0.0f);
  EXPECT_TRUE(FetchFloats(ws, "empty", &dims).empty());
  EXPECT_EQ(dims, (std::vector<int64_t>{2, 0, 3}));
}

TEST(Workspace, FetchIsASnapshotAndFeedCopies) {
  Ws ws;
  c2rs_tensor* t = nullptr;
  int64_t dim = 2;
  ASSERT_EQ(c2rs_tensor_new(C2RS_DTYPE_INT64, &dim, 1, &t), C2RS_OK);
  ASSERT_EQ(c2rs_workspace_feed(ws, "x", t), C2RS_OK);
  void* data = nullptr;
  ASSERT_EQ(c2rs_tensor_mutable_data(t, &data), C2RS_OK);
  static_cast<int64_t*>(data)[0] = 7;  // after the feed: not seen by the blob
  c2rs_tensor* fetched = nullptr;
  ASSERT_EQ(c2rs_workspace_fetch(ws, "x", &fetched), C2RS_OK);
  const void* fdata = nullptr;
  ASSERT_EQ(c2rs_tensor_data(fetched, &fdata), C2RS_OK);
  EXPECT_EQ(static_cast<const int64_t*>(fdata)[0], 0);
  int32_t dtype = 0;
  ASSERT_EQ(c2rs_tensor_dtype(fetched, &dtype), C2RS_OK);
  EXPECT_EQ(dtype, C2RS_DTYPE_INT64);
  c2rs_tensor_free(fetched);
  // feed_move takes the handle (consumed), keeping the 7.
  ASSERT_EQ(c2rs_workspace_feed_move(ws, "y", t), C2RS_OK);
  ASSERT_EQ(c2rs_workspace_fetch(ws, "y", &fetched), C2RS_OK);
  ASSERT_EQ(c2rs_tensor_data(fetched, &fdata), C2RS_OK);
  EXPECT_EQ(static_cast<const int64_t*>(fdata)[0], 7);
  c2rs_tensor_free(fetched);
}

TEST(Workspace, StringBlobsRoundTripWithNul) {
  Ws ws;
  const std::string value("a\0b", 3);
  ASSERT_EQ(c2rs_workspace_feed_string(ws, "s", reinterpret_cast<const uint8_t*>(value.data()), value.size()),
            C2RS_OK);
  c2rs_buffer* buf = nullptr;
  ASSERT_EQ(c2rs_workspace_fetch_string(ws, "s", &buf), C2RS_OK);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(c2rs_buffer_data(buf)), c2rs_buffer_len(buf)), value);
  c2rs_buffer_free(buf);
  const char* type = nullptr;
  ASSERT_EQ(c2rs_workspace_blob_type(ws, "s", &type), C2RS_OK);
  EXPECT_STREQ(type, "std::string");
  c2rs_tensor* t = nullptr;
  EXPECT_EQ(c2rs_workspace_fetch(ws, "s", &t), C2RS_TYPE_MISMATCH);
  EXPECT_EQ(t, nullptr);
  // An uninitialized blob fetches as Caffe2's native-class description.
  ASSERT_EQ(c2rs_workspace_create_blob(ws, "e"), C2RS_OK);
  ASSERT_EQ(c2rs_workspace_fetch_string(ws, "e", &buf), C2RS_OK);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(c2rs_buffer_data(buf)), c2rs_buffer_len(buf)),
            "e, a C++ native class of type nullptr (uninitialized).");
  c2rs_buffer_free(buf);
}

TEST(Workspace, FetchMissingBlobIsNotFound) {
  Ws ws;
  c2rs_tensor* t = nullptr;
  EXPECT_EQ(c2rs_workspace_fetch(ws, "nope", &t), C2RS_NOT_FOUND);
  EXPECT_NE(LastError().find("Can't find blob: nope"), std::string::npos);
}

TEST(Workspace, RunOperatorOnceLeavesItsOutput) {
  Ws ws;
  ASSERT_EQ(RunOp(ws, Op("ConstantFill", {}, {"testblob"}, {IntsArg("shape", {1, 2}), FloatArg("value", 1.5f)})),
            C2RS_OK)
      << LastError();
  EXPECT_EQ(Names(ws, true), std::vector<std::string>{"testblob"});
  EXPECT_EQ(FetchFloats(ws, "testblob"), (std::vector<float>{1.5f, 1.5f}));
}

TEST(Workspace, CppEnforceAsException) {
  Ws ws;
  EXPECT_EQ(RunOp(ws, Op("Relu", {"X"}, {"Y"})), C2RS_ENFORCE_NOT_MET);
  EXPECT_NE(LastError().find("op Relu: Encountered a non-existing input blob: X"), std::string::npos) << LastError();
}

TEST(Workspace, UnknownOperatorTypeIsNotFoundNamingIt) {
  Ws ws;
  EXPECT_EQ(RunOp(ws, Op("NoSuchOp", {}, {})), C2RS_NOT_FOUND);
  EXPECT_NE(LastError().find("NoSuchOp"), std::string::npos);
}

TEST(Workspace, SchemaFailureIsSchemaMismatchWithReason) {
  Ws ws;
  FeedFloats(ws, "x", {1}, 1.0f);
  EXPECT_EQ(RunOp(ws, Op("Copy", {"x"}, {"x"})), C2RS_SCHEMA_MISMATCH);
  EXPECT_NE(LastError().find("in-place"), std::string::npos) << LastError();
  EXPECT_EQ(RunOp(ws, Op("Relu", {"x", "x"}, {"y"})), C2RS_SCHEMA_MISMATCH);
  EXPECT_NE(LastError().find("Input size 2"), std::string::npos) << LastError();
}

TEST(Workspace, GarbageBytesAreParseErrors) {
  Ws ws;
  const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x12, 0x80};
  EXPECT_EQ(c2rs_workspace_run_operator_once(ws, garbage, sizeof garbage), C2RS_PARSE_ERROR);
  EXPECT_NE(LastError().find("OperatorDef"), std::string::npos);
  EXPECT_EQ(c2rs_workspace_create_net(ws, garbage, sizeof garbage, false), C2RS_PARSE_ERROR);
  EXPECT_EQ(c2rs_workspace_run_net_once(ws, garbage, sizeof garbage), C2RS_PARSE_ERROR);
  EXPECT_EQ(c2rs_workspace_run_operator_once(ws, nullptr, 3), C2RS_INVALID_ARGUMENT);
  // Empty bytes decode to an OperatorDef with no type.
  EXPECT_EQ(c2rs_workspace_run_operator_once(ws, nullptr, 0), C2RS_NOT_FOUND);
}

TEST(Workspace, NullArgumentsAreInvalid) {
  bool b = false;
  EXPECT_EQ(c2rs_workspace_has_blob(nullptr, "x", &b), C2RS_INVALID_ARGUMENT);
  EXPECT_NE(LastError().find("`ws`"), std::string::npos);
  Ws ws;
  EXPECT_EQ(c2rs_workspace_has_blob(ws, nullptr, &b), C2RS_INVALID_ARGUMENT);
  EXPECT_EQ(c2rs_workspace_has_blob(ws, "x", nullptr), C2RS_INVALID_ARGUMENT);
  EXPECT_EQ(c2rs_workspace_new(nullptr, nullptr), C2RS_INVALID_ARGUMENT);
  EXPECT_EQ(c2rs_workspace_feed(ws, "x", nullptr), C2RS_INVALID_ARGUMENT);
  EXPECT_EQ(c2rs_workspace_run_net(ws, "n", -1), C2RS_INVALID_ARGUMENT);
  c2rs_workspace_free(nullptr);
}

// ------------------------------------------------------------------ nets
TEST(Workspace, CreateNetRefusesOverwriteUnlessAsked) {
  Ws ws;
  Pb net = Net("n", "", {Op("ConstantFill", {}, {"x"}, {IntsArg("shape", {2})})});
  ASSERT_EQ(c2rs_workspace_create_net(ws, Bytes(net), net.bytes.size(), false), C2RS_OK);
  EXPECT_EQ(c2rs_workspace_create_net(ws, Bytes(net), net.bytes.size(), false), C2RS_ALREADY_EXISTS);
  EXPECT_NE(LastError().find("I respectfully refuse to overwrite an existing net of the same name \"n\""),
            std::string::npos);
  EXPECT_EQ(c2rs_workspace_create_net(ws, Bytes(net), net.bytes.size(), true), C2RS_OK);
  bool has = false;
  ASSERT_EQ(c2rs_workspace_has_net(ws, "n", &has), C2RS_OK);
  EXPECT_TRUE(has);
  c2rs_string_list* nets = nullptr;
  ASSERT_EQ(c2rs_workspace_net_names(ws, &nets), C2RS_OK);
  EXPECT_EQ(ToVector(nets), std::vector<std::string>{"n"});
  ASSERT_EQ(c2rs_workspace_run_net(ws, "n", 3), C2RS_OK) << LastError();
  EXPECT_EQ(FetchFloats(ws, "x"), (std::vector<float>{0.0f, 0.0f}));
  bool deleted = false;
  ASSERT_EQ(c2rs_workspace_delete_net(ws, "n", &deleted), C2RS_OK);
  EXPECT_TRUE(deleted);
  EXPECT_EQ(c2rs_workspace_run_net(ws, "n", 1), C2RS_NOT_FOUND);
  EXPECT_NE(LastError().find("Network n does not exist yet."), std::string::npos);
}

TEST(Workspace, CreateNetNeedsExternalInputs) {
  Ws ws;
  Pb net = Net("needs_in", "dag", {Op("Relu", {"in"}, {"out"})}, {"in"});
  EXPECT_EQ(c2rs_workspace_create_net(ws, Bytes(net), net.bytes.size(), false), C2RS_NOT_FOUND);
  EXPECT_NE(LastError().find("in"), std::string::npos);
  FeedFloats(ws, "in", {2}, -1.0f);
  ASSERT_EQ(c2rs_workspace_create_net(ws, Bytes(net), net.bytes.size(), false), C2RS_OK) << LastError();
  ASSERT_EQ(c2rs_workspace_run_net(ws, "needs_in", 1), C2RS_OK);
  EXPECT_EQ(FetchFloats(ws, "out"), (std::vector<float>{0.0f, 0.0f}));
}

TEST(Workspace, RunNetOnceDoesNotRegister) {
  Ws ws;
  Pb net = Net("once", "", {Op("ConstantFill", {}, {"b"}, {IntsArg("shape", {1})})});
  ASSERT_EQ(c2rs_workspace_run_net_once(ws, Bytes(net), net.bytes.size()), C2RS_OK);
  EXPECT_TRUE(Has(ws, "b"));
  c2rs_string_list* nets = nullptr;
  ASSERT_EQ(c2rs_workspace_net_names(ws, &nets), C2RS_OK);
  EXPECT_TRUE(ToVector(nets).empty());
  Pb odd = Net("odd", "no_such_type", {});
  EXPECT_EQ(c2rs_workspace_run_net_once(ws, Bytes(odd), odd.bytes.size()), C2RS_NOT_FOUND);
  EXPECT_NE(LastError().find("Could not create net: odd of type no_such_type"), std::string::npos);
}

TEST(Workspace, NetFailureNamesOpIndexAndType) {
  Ws ws;
  FeedFloats(ws, "x", {1}, 1.0f);
  c2rs_tensor* t = nullptr;
  int64_t one = 1;
  ASSERT_EQ(c2rs_tensor_new(C2RS_DTYPE_INT32, &one, 1, &t), C2RS_OK);
  ASSERT_EQ(c2rs_workspace_feed(ws, "ints", t), C2RS_OK);
  c2rs_tensor_free(t);
  Pb net = Net("fails", "simple", {Op("Relu", {"x"}, {"y"}), Op("Relu", {"ints"}, {"z"})});
  ASSERT_EQ(c2rs_workspace_create_net(ws, Bytes(net), net.bytes.size(), false), C2RS_OK);
  EXPECT_EQ(c2rs_workspace_run_net(ws, "fails", 1), C2RS_TYPE_MISMATCH);
  EXPECT_EQ(LastError().rfind("c2rs_workspace_run_net: op #1 (Relu): ", 0), 0u) << LastError();
  int64_t pos = -1;
  ASSERT_EQ(c2rs_workspace_last_failed_op_position(ws, &pos), C2RS_OK);
  EXPECT_EQ(pos, 1);
}

// ------------------------------------------------------------------ GetAllBlobNames
TEST(Workspace, GetAllBlobNamesListsItsOwnOutput) {
  Ws ws;
  ASSERT_EQ(RunOp(ws, Op("GetAllBlobNames", {}, {"names"})), C2RS_OK) << LastError();
  EXPECT_EQ(FetchStrings(ws, "names"), std::vector<std::string>{"names"});
}

TEST(Workspace, GetAllBlobNamesWithAndWithoutSharedInAChild) {
  Ws parent;
  ASSERT_EQ(c2rs_workspace_create_blob(parent, "p"), C2RS_OK);
  Ws child(parent.ws);
  ASSERT_EQ(c2rs_workspace_create_blob(child, "c"), C2RS_OK);
  ASSERT_EQ(RunOp(child, Op("GetAllBlobNames", {}, {"all"})), C2RS_OK);
  EXPECT_EQ(FetchStrings(child, "all"), (std::vector<std::string>{"all", "c", "p"}));
  ASSERT_EQ(RunOp(child, Op("GetAllBlobNames", {}, {"local"}, {IntArg("include_shared", 0)})), C2RS_OK);
  EXPECT_EQ(FetchStrings(child, "local"), (std::vector<std::string>{"all", "c", "local"}));
}

TEST(Workspace, GetAllBlobNamesRejectsWrongCounts) {
  Ws ws;
  ASSERT_EQ(c2rs_workspace_create_blob(ws, "x"), C2RS_OK);
  EXPECT_EQ(RunOp(ws, Op("GetAllBlobNames", {"x"}, {"names"})), C2RS_SCHEMA_MISMATCH);
  EXPECT_EQ(RunOp(ws, Op("GetAllBlobNames", {}, {"a", "b"})), C2RS_SCHEMA_MISMATCH);
}

TEST(Workspace, RegisteredOperatorsListsBuiltins) {
  c2rs_string_list* list = nullptr;
  ASSERT_EQ(c2rs_registered_operators(&list), C2RS_OK);
  auto ops = ToVector(list);
  for (const char* name : {"ConstantFill", "Copy", "GetAllBlobNames", "Relu"}) {
    EXPECT_NE(std::find(ops.begin(), ops.end(), name), ops.end()) << name;
  }
}

// ------------------------------------------------------------------ host operators
namespace {

// Scales a FLOAT input by arg `scale` into output 0; counts destroys through `user`.
int32_t ScaleCreate(void* /*user*/, c2rs_op_context* ctx, void** state) {
  float scale = 0;
  if (c2rs_op_context_arg_float(ctx, "scale", 1.0f, &scale) != C2RS_OK) return C2RS_INVALID_ARGUMENT;
  *state = new float(scale);
  return C2RS_OK;
}
int32_t ScaleRun(void* /*user*/, void* state, c2rs_op_context* ctx) {
  const c2rs_tensor* in = nullptr;
  if (c2rs_op_context_input(ctx, 0, &in) != C2RS_OK) return C2RS_RUN_FAILED;
  const int64_t* dims = nullptr;
  size_t ndim = 0;
  int64_t n = 0;
  const void* src = nullptr;
  if (c2rs_tensor_dims(in, &dims, &ndim) != C2RS_OK || c2rs_tensor_numel(in, &n) != C2RS_OK ||
      c2rs_tensor_data(in, &src) != C2RS_OK) {
    (void)c2rs_op_context_set_error(ctx, "input is not a FLOAT tensor");
    return C2RS_RUN_FAILED;
  }
  c2rs_tensor* out = nullptr;
  if (c2rs_op_context_output(ctx, 0, C2RS_DTYPE_FLOAT, dims, ndim, &out) != C2RS_OK) return C2RS_RUN_FAILED;
  void* dst = nullptr;
  if (c2rs_tensor_mutable_data(out, &dst) != C2RS_OK) return C2RS_RUN_FAILED;
  const float scale = *static_cast<float*>(state);
  for (int64_t i = 0; i < n; ++i) static_cast<float*>(dst)[i] = static_cast<const float*>(src)[i] * scale;
  return C2RS_OK;
}
void ScaleDestroy(void* user, void* state) {
  delete static_cast<float*>(state);
  static_cast<std::atomic<int>*>(user)->fetch_add(1);
}

int32_t FailRun(void*, void*, c2rs_op_context* ctx) {
  (void)c2rs_op_context_set_error(ctx, "host kernel says no");
  return 1;
}

// Blocks until the flag is set (bounded by 10 s so a bug fails instead of hanging).
struct Gate {
  std::mutex m;
  std::condition_variable cv;
  bool started = false;
  bool released = false;
};
int32_t WaitRun(void* user, void*, c2rs_op_context* ctx) {
  auto* g = static_cast<Gate*>(user);
  std::unique_lock<std::mutex> lock(g->m);
  g->started = true;
  g->cv.notify_all();
  if (!g->cv.wait_for(lock, std::chrono::seconds(10), [g] { return g->released; })) {
    (void)c2rs_op_context_set_error(ctx, "never released");
    return C2RS_TIMEOUT;
  }
  return C2RS_OK;
}

std::atomic<int> g_scale_destroyed{0};
Gate g_gate;

void RegisterHostOps() {
  static const bool registered = [] {
    c2rs_op_schema schema{1, 1, 1, 1, C2RS_INPLACE_ALLOW_ONE_TO_ONE};
    c2rs_op_callbacks scale{ScaleCreate, ScaleRun, nullptr, ScaleDestroy};
    EXPECT_EQ(c2rs_register_operator("HostScale", &schema, &scale, &g_scale_destroyed), C2RS_OK) << LastError();
    c2rs_op_callbacks fail{nullptr, FailRun, nullptr, nullptr};
    EXPECT_EQ(c2rs_register_operator("HostFail", nullptr, &fail, nullptr), C2RS_OK);
    c2rs_op_callbacks wait{nullptr, WaitRun, nullptr, nullptr};
    EXPECT_EQ(c2rs_register_operator("HostWait", nullptr, &wait, &g_gate), C2RS_OK);
    return true;
  }();
  (void)registered;
}

}  // namespace

TEST(Workspace, HostOperatorRunsInNetsAndIsDestroyed) {
  RegisterHostOps();
  int before = g_scale_destroyed.load();
  {
    Ws ws;
    FeedFloats(ws, "x", {3}, 2.0f);
    Pb net = Net("host", "dag", {Op("HostScale", {"x"}, {"y"}, {FloatArg("scale", 3.0f)}),
                                 Op("HostScale", {"y"}, {"y"}, {FloatArg("scale", 0.5f)})});
    ASSERT_EQ(c2rs_workspace_create_net(ws, Bytes(net), net.bytes.size(), false), C2RS_OK) << LastError();
    ASSERT_EQ(c2rs_workspace_run_net(ws, "host", 1), C2RS_OK) << LastError();
    EXPECT_EQ(FetchFloats(ws, "y"), (std::vector<float>{3.0f, 3.0f, 3.0f}));
    EXPECT_EQ(RunOp(ws, Op("HostScale", {"x", "x"}, {"z"})), C2RS_SCHEMA_MISMATCH);
  }
  EXPECT_EQ(g_scale_destroyed.load(), before + 2);
  // Registering the same type twice fails.
  c2rs_op_callbacks cb{nullptr, FailRun, nullptr, nullptr};
  EXPECT_EQ(c2rs_register_operator("HostScale", nullptr, &cb, nullptr), C2RS_ALREADY_EXISTS);
  EXPECT_EQ(c2rs_register_operator("Relu", nullptr, &cb, nullptr), C2RS_ALREADY_EXISTS);
  c2rs_op_callbacks no_run{nullptr, nullptr, nullptr, nullptr};
  EXPECT_EQ(c2rs_register_operator("HostNoRun", nullptr, &no_run, nullptr), C2RS_INVALID_ARGUMENT);
}

TEST(Workspace, HostOperatorFailureCarriesItsMessage) {
  RegisterHostOps();
  Ws ws;
  EXPECT_EQ(RunOp(ws, Op("HostFail", {}, {"o"})), C2RS_RUN_FAILED);
  EXPECT_EQ(LastError(), "c2rs_workspace_run_operator_once: op (HostFail): host kernel says no");
  EXPECT_TRUE(Has(ws, "o"));
}

TEST(Workspace, BlockedOperatorDoesNotBlockOtherThreads) {
  RegisterHostOps();
  Ws ws;
  Pb blocker = Net("blocker", "", {Op("HostWait", {}, {"blocked_out"})});
  ASSERT_EQ(c2rs_workspace_create_net(ws, Bytes(blocker), blocker.bytes.size(), false), C2RS_OK);
  Pb filler = Net("filler", "", {Op("ConstantFill", {}, {"filled"}, {IntsArg("shape", {4})})});
  ASSERT_EQ(c2rs_workspace_create_net(ws, Bytes(filler), filler.bytes.size(), false), C2RS_OK);

  std::atomic<int32_t> blocked_status{-1};
  std::thread runner([&] { blocked_status = c2rs_workspace_run_net(ws, "blocker", 1); });
  {
    std::unique_lock<std::mutex> lock(g_gate.m);
    ASSERT_TRUE(g_gate.cv.wait_for(lock, std::chrono::seconds(10), [] { return g_gate.started; }));
  }
  // While the operator blocks: feed, fetch, list, run other nets from several threads.
  std::vector<std::thread> workers;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    workers.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        std::string name = "t" + std::to_string(t) + "_" + std::to_string(i);
        c2rs_tensor* x = nullptr;
        int64_t dim = 1;
        if (c2rs_tensor_new(C2RS_DTYPE_FLOAT, &dim, 1, &x) != C2RS_OK) ++failures;
        if (c2rs_workspace_feed_move(ws, name.c_str(), x) != C2RS_OK) ++failures;
        c2rs_tensor* y = nullptr;
        if (c2rs_workspace_fetch(ws, name.c_str(), &y) != C2RS_OK) ++failures;
        c2rs_tensor_free(y);
        bool removed = false;
        if (c2rs_workspace_remove_blob(ws, name.c_str(), &removed) != C2RS_OK || !removed) ++failures;
      }
      if (c2rs_workspace_run_net(ws, "filler", 2) != C2RS_OK) ++failures;
      c2rs_string_list* names = nullptr;
      if (c2rs_workspace_blob_names(ws, true, &names) != C2RS_OK) ++failures;
      c2rs_string_list_free(names);
    });
  }
  for (auto& w : workers) w.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(blocked_status.load(), -1);  // still blocked: nothing above waited on it
  {
    std::lock_guard<std::mutex> lock(g_gate.m);
    g_gate.released = true;
  }
  g_gate.cv.notify_all();
  runner.join();
  EXPECT_EQ(blocked_status.load(), C2RS_OK);
  EXPECT_EQ(FetchFloats(ws, "filled"), std::vector<float>(4, 0.0f));
}
