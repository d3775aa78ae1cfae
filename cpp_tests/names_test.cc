// Blob and net names are byte strings (issue 13 item 4): names with NUL bytes, non-ASCII text
// and 1 MB length through the length-taking C functions (*_n), operators, nets, GetAllBlobNames,
// string lists and error messages, and through caffe2rs.hpp, whose std::string carries NULs.
#include "caffe2rs.h"
#include "caffe2rs.hpp"
#include "c2rs_test_proto.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

namespace {

using c2rs_test::FloatArg;
using c2rs_test::IntsArg;
using c2rs_test::Op;
using c2rs_test::Pb;

using namespace std::string_literals;

std::string Megabyte() {
  std::string s(1 << 20, 'm');
  s[10] = '\0';
  s.replace(500000, 2, "\xc3\xa9");  // é
  return s;
}

std::vector<std::string> HardNames() {
  return {"a\0b"s, "\0"s, ""s, "blob \xc3\xa9 \xe6\xbc\xa2 \xf0\x9f\x98\x80"s, "a\0"s, Megabyte()};
}

std::vector<std::string> Sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

struct Ws {
  c2rs_workspace* ws = nullptr;
  Ws() { EXPECT_EQ(c2rs_workspace_new(nullptr, &ws), C2RS_OK); }
  ~Ws() { c2rs_workspace_free(ws); }
  Ws(const Ws&) = delete;
  Ws& operator=(const Ws&) = delete;
  operator c2rs_workspace*() const { return ws; }
};

std::string ExactError() {
  size_t len = 0;
  const char* m = c2rs_last_error_message_n(&len);
  return std::string(m, len);
}

c2rs_tensor* Floats(std::vector<float> values) {
  c2rs_tensor* t = nullptr;
  const int64_t dims[1] = {static_cast<int64_t>(values.size())};
  EXPECT_EQ(c2rs_tensor_new(C2RS_DTYPE_FLOAT, dims, 1, &t), C2RS_OK);
  void* data = nullptr;
  EXPECT_EQ(c2rs_tensor_mutable_data(t, &data), C2RS_OK);
  std::copy(values.begin(), values.end(), static_cast<float*>(data));
  return t;
}

std::vector<float> FetchN(c2rs_workspace* ws, const std::string& name) {
  c2rs_tensor* t = nullptr;
  EXPECT_EQ(c2rs_workspace_fetch_n(ws, name.data(), name.size(), &t), C2RS_OK) << ExactError();
  if (t == nullptr) return {};
  int64_t n = 0;
  EXPECT_EQ(c2rs_tensor_numel(t, &n), C2RS_OK);
  const void* data = nullptr;
  EXPECT_EQ(c2rs_tensor_data(t, &data), C2RS_OK);
  std::vector<float> out(static_cast<const float*>(data), static_cast<const float*>(data) + n);
  c2rs_tensor_free(t);
  return out;
}

std::vector<std::string> ListN(c2rs_string_list* list) {
  std::vector<std::string> out;
  for (size_t i = 0; i < c2rs_string_list_len(list); ++i) {
    const char* p = nullptr;
    size_t len = 0;
    EXPECT_EQ(c2rs_string_list_get_n(list, i, &p, &len), C2RS_OK);
    EXPECT_EQ(p[len], '\0') << "entry " << i << " is NUL-terminated";
    out.emplace_back(p, len);
  }
  c2rs_string_list_free(list);
  return out;
}

std::vector<std::string> BlobNames(c2rs_workspace* ws) {
  c2rs_string_list* list = nullptr;
  EXPECT_EQ(c2rs_workspace_blob_names(ws, true, &list), C2RS_OK);
  return ListN(list);
}

int32_t RunOp(c2rs_workspace* ws, const Pb& op) {
  return c2rs_workspace_run_operator_once(ws, op.data(), op.bytes.size());
}

Pb Fill(const std::string& out, float value) {
  return Op("ConstantFill", {}, {out}, {IntsArg("shape", {2}), FloatArg("value", value)});
}

TEST(Names, FeedAndFetchKeepEveryByteOfTheName) {
  Ws ws;
  const std::vector<std::string> names = HardNames();
  for (size_t k = 0; k < names.size(); ++k) {
    ASSERT_EQ(c2rs_workspace_feed_move_n(ws, names[k].data(), names[k].size(),
                                         Floats({static_cast<float>(k), 0.5f})),
              C2RS_OK);
  }
  for (size_t k = 0; k < names.size(); ++k) {
    bool has = false;
    ASSERT_EQ(c2rs_workspace_has_blob_n(ws, names[k].data(), names[k].size(), &has), C2RS_OK);
    EXPECT_TRUE(has);
    EXPECT_EQ(FetchN(ws, names[k]), (std::vector<float>{static_cast<float>(k), 0.5f}));
  }
  // The C-string prefix of "a\0b" is another name.
  bool has = true;
  ASSERT_EQ(c2rs_workspace_has_blob(ws, "a", &has), C2RS_OK);
  EXPECT_FALSE(has);
  EXPECT_EQ(BlobNames(ws), Sorted(names));
  bool removed = false;
  ASSERT_EQ(c2rs_workspace_remove_blob_n(ws, "a\0b", 3, &removed), C2RS_OK);
  EXPECT_TRUE(removed);
  ASSERT_EQ(c2rs_workspace_has_blob_n(ws, "a\0", 2, &has), C2RS_OK);
  EXPECT_TRUE(has) << "removing a\\0b leaves a\\0";
}

TEST(Names, OperatorOutputsAreFoundByTheirOwnName) {
  Ws ws;
  const std::vector<std::string> names = HardNames();
  std::vector<std::string> all;
  for (size_t k = 0; k < names.size(); ++k) {
    ASSERT_EQ(RunOp(ws, Fill(names[k], static_cast<float>(k))), C2RS_OK) << ExactError();
    const std::string copy = "copy of " + names[k];
    ASSERT_EQ(RunOp(ws, Op("Copy", {names[k]}, {copy})), C2RS_OK) << ExactError();
    EXPECT_EQ(FetchN(ws, copy), (std::vector<float>(2, static_cast<float>(k))));
    EXPECT_EQ(FetchN(ws, names[k]), (std::vector<float>(2, static_cast<float>(k))));
    all.push_back(names[k]);
    all.push_back(copy);
  }
  EXPECT_EQ(BlobNames(ws), Sorted(all));
}

TEST(Names, ANetWhoseNameHoldsNulIsCreatedAndRunByThatName) {
  Ws ws;
  const std::string name = "net\0one \xc3\xa9"s;
  Pb net;
  net.str(1, name).msg(2, Fill("out\0put"s, 4.0f));
  ASSERT_EQ(c2rs_workspace_create_net(ws, net.data(), net.bytes.size(), false), C2RS_OK) << ExactError();
  bool has = false;
  ASSERT_EQ(c2rs_workspace_has_net_n(ws, name.data(), name.size(), &has), C2RS_OK);
  EXPECT_TRUE(has);
  EXPECT_EQ(c2rs_workspace_run_net(ws, "net", 1), C2RS_NOT_FOUND) << "the C-string prefix names no net";
  ASSERT_EQ(c2rs_workspace_run_net_n(ws, name.data(), name.size(), 1), C2RS_OK) << ExactError();
  EXPECT_EQ(FetchN(ws, "out\0put"s), (std::vector<float>{4.0f, 4.0f}));
  c2rs_string_list* nets = nullptr;
  ASSERT_EQ(c2rs_workspace_net_names(ws, &nets), C2RS_OK);
  EXPECT_EQ(ListN(nets), std::vector<std::string>{name});
  bool deleted = false;
  ASSERT_EQ(c2rs_workspace_delete_net_n(ws, name.data(), name.size(), &deleted), C2RS_OK);
  EXPECT_TRUE(deleted);
}

TEST(Names, GetAllBlobNamesHoldsTheExactBytes) {
  Ws ws;
  std::vector<std::string> names = HardNames();
  for (const std::string& n : names) {
    ASSERT_EQ(c2rs_workspace_create_blob_n(ws, n.data(), n.size()), C2RS_OK);
  }
  const std::string out = "all\0names"s;
  ASSERT_EQ(RunOp(ws, Op("GetAllBlobNames", {}, {out})), C2RS_OK) << ExactError();
  c2rs_tensor* t = nullptr;
  ASSERT_EQ(c2rs_workspace_fetch_n(ws, out.data(), out.size(), &t), C2RS_OK);
  int64_t n = 0;
  ASSERT_EQ(c2rs_tensor_numel(t, &n), C2RS_OK);
  std::vector<std::string> got;
  for (int64_t i = 0; i < n; ++i) {
    const uint8_t* p = nullptr;
    size_t len = 0;
    ASSERT_EQ(c2rs_tensor_string_at(t, static_cast<size_t>(i), &p, &len), C2RS_OK);
    got.emplace_back(reinterpret_cast<const char*>(p), len);
  }
  c2rs_tensor_free(t);
  names.push_back(out);
  EXPECT_EQ(got, Sorted(names));
}

TEST(Names, StringListGetRefusesToTruncateAndGetNGivesLengths) {
  Ws ws;
  ASSERT_EQ(c2rs_workspace_create_blob_n(ws, "a\0b", 3), C2RS_OK);
  ASSERT_EQ(c2rs_workspace_create_blob(ws, "plain"), C2RS_OK);
  c2rs_string_list* list = nullptr;
  ASSERT_EQ(c2rs_workspace_local_blob_names(ws, &list), C2RS_OK);
  EXPECT_EQ(c2rs_string_list_get(list, 0), nullptr);
  EXPECT_EQ(c2rs_last_error_code(), C2RS_INVALID_ARGUMENT);
  EXPECT_NE(std::string(c2rs_last_error_message()).find("holds a NUL byte at offset 1 of 3"), std::string::npos);
  EXPECT_STREQ(c2rs_string_list_get(list, 1), "plain");
  const char* p = nullptr;
  size_t len = 99;
  EXPECT_EQ(c2rs_string_list_get_n(list, 2, &p, &len), C2RS_INVALID_ARGUMENT);
  EXPECT_EQ(p, nullptr);
  EXPECT_EQ(len, 0u);
  EXPECT_EQ(ListN(list), (std::vector<std::string>{"a\0b"s, "plain"}));
}

TEST(Names, NonUtf8NamesAreRefusedNamingTheArgumentOrTheOperatorAndOutput) {
  Ws ws;
  const std::string bad = "x\xffy";
  c2rs_tensor* t = Floats({1.0f});
  EXPECT_EQ(c2rs_workspace_feed_n(ws, bad.data(), bad.size(), t), C2RS_INVALID_ARGUMENT);
  c2rs_tensor_free(t);
  EXPECT_NE(ExactError().find("argument `name` is not valid UTF-8 (byte 1 of 3)"), std::string::npos);
  EXPECT_EQ(RunOp(ws, Fill("out" + bad, 1.0f)), C2RS_INVALID_ARGUMENT);
  EXPECT_NE(ExactError().find("op (ConstantFill): output 0 \"outx\\xffy\" is not valid UTF-8"), std::string::npos)
      << ExactError();
  EXPECT_TRUE(BlobNames(ws).empty());
}

TEST(Names, ErrorMessagesKeepTheNameByteForByte) {
  Ws ws;
  c2rs_tensor* t = nullptr;
  EXPECT_EQ(c2rs_workspace_fetch_n(ws, "x\0y", 3, &t), C2RS_NOT_FOUND);
  EXPECT_EQ(ExactError(), "c2rs_workspace_fetch_n: Can't find blob: x\0y"s);
  EXPECT_STREQ(c2rs_last_error_message(), "c2rs_workspace_fetch_n: Can't find blob: x\\0y");
}

TEST(HppNames, StdStringNamesCarryNulThroughTheWrapper) {
  c2rs::Workspace ws;
  c2rs::Tensor t = c2rs::Tensor::create(C2RS_DTYPE_INT32, {1});
  t.mutable_data<int32_t>()[0] = 5;
  const std::string name = "a\0b"s;
  ws.feed(name, t);
  EXPECT_TRUE(ws.has_blob(name));
  EXPECT_FALSE(ws.has_blob("a"));
  EXPECT_EQ(ws.fetch(name).data<int32_t>()[0], 5);
  ws.feed_string("s\0"s, "v\0w"s);
  EXPECT_EQ(ws.fetch_string("s\0"s), "v\0w"s);
  EXPECT_EQ(ws.blob_names(), (std::vector<std::string>{"a\0b"s, "s\0"s}));

  Pb net;
  net.str(1, "n\0et"s).msg(2, Fill(Megabyte(), 2.0f));
  ws.create_net(net.bytes);
  EXPECT_TRUE(ws.has_net("n\0et"s));
  EXPECT_FALSE(ws.has_net("n"));
  ws.run_net("n\0et"s);
  EXPECT_EQ(ws.fetch(Megabyte()).data<float>()[1], 2.0f);
  EXPECT_EQ(ws.net_names(), std::vector<std::string>{"n\0et"s});
  EXPECT_TRUE(ws.delete_net("n\0et"s));
  try {
    ws.run_net("gone\0"s);
    FAIL() << "running a missing net must throw";
  } catch (const c2rs::Error& e) {
    EXPECT_EQ(e.status(), C2RS_NOT_FOUND);
    EXPECT_EQ(e.message(), "c2rs_workspace_run_net_n: Network gone\0 does not exist yet."s);
    EXPECT_STREQ(e.what(), "c2rs_workspace_run_net_n: Network gone\\0 does not exist yet.");
  }
  EXPECT_TRUE(ws.remove_blob(name));
  EXPECT_FALSE(ws.has_blob(name));
}

}  // namespace
