// Header hygiene of include/caffe2rs.h: compiled as C++17 with -Wall -Wextra -Wpedantic -Werror
// (see CMakeLists.txt); every status and dtype constant pinned; ABI macros equal the loaded
// library's version; every declared function documented with `Thread safety:` and `Returns:`;
// the exported `c2rs_` symbols of the loaded .so equal the declared functions.
#include <gtest/gtest.h>

#include <dlfcn.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "c2rs_test_util.h"
#include "caffe2rs.h"

// Codes are only ever appended (ARCHITECTURE.md convention 1).
static_assert(C2RS_OK == 0, "C2RS_OK");
static_assert(C2RS_ENFORCE_NOT_MET == 1, "C2RS_ENFORCE_NOT_MET");
static_assert(C2RS_INVALID_ARGUMENT == 2, "C2RS_INVALID_ARGUMENT");
static_assert(C2RS_NOT_FOUND == 3, "C2RS_NOT_FOUND");
static_assert(C2RS_ALREADY_EXISTS == 4, "C2RS_ALREADY_EXISTS");
static_assert(C2RS_TYPE_MISMATCH == 5, "C2RS_TYPE_MISMATCH");
static_assert(C2RS_SCHEMA_MISMATCH == 6, "C2RS_SCHEMA_MISMATCH");
static_assert(C2RS_UNSUPPORTED == 7, "C2RS_UNSUPPORTED");
static_assert(C2RS_RUN_FAILED == 8, "C2RS_RUN_FAILED");
static_assert(C2RS_PARSE_ERROR == 9, "C2RS_PARSE_ERROR");
static_assert(C2RS_CLOSED == 10, "C2RS_CLOSED");
static_assert(C2RS_TIMEOUT == 11, "C2RS_TIMEOUT");
static_assert(C2RS_IO_ERROR == 12, "C2RS_IO_ERROR");
static_assert(C2RS_PANIC == 13, "C2RS_PANIC");
static_assert(C2RS_INTERNAL == 14, "C2RS_INTERNAL");

// Caffe2 TensorProto.DataType numbering.
static_assert(C2RS_DTYPE_FLOAT == 1, "FLOAT");
static_assert(C2RS_DTYPE_INT32 == 2, "INT32");
static_assert(C2RS_DTYPE_BYTE == 3, "BYTE");
static_assert(C2RS_DTYPE_STRING == 4, "STRING");
static_assert(C2RS_DTYPE_BOOL == 5, "BOOL");
static_assert(C2RS_DTYPE_UINT8 == 6, "UINT8");
static_assert(C2RS_DTYPE_INT8 == 7, "INT8");
static_assert(C2RS_DTYPE_UINT16 == 8, "UINT16");
static_assert(C2RS_DTYPE_INT16 == 9, "INT16");
static_assert(C2RS_DTYPE_INT64 == 10, "INT64");
static_assert(C2RS_DTYPE_FLOAT16 == 12, "FLOAT16");
static_assert(C2RS_DTYPE_DOUBLE == 13, "DOUBLE");

// Caffe2 DeviceType numbering.
static_assert(C2RS_DEVICE_CPU == 0, "CPU");
static_assert(C2RS_DEVICE_CUDA == 1, "CUDA");


namespace {

struct Declaration {
  std::string name;
  std::string doc;  // the /** ... */ block right before it, "" when none
};

// The functions declared in a C header, each with the doc comment directly above it. A small
// scanner: comments, preprocessor lines, and statements ending at ';' or braces.
std::vector<Declaration> declared_functions(const std::string& text) {
  std::vector<Declaration> out;
  std::string doc;
  std::string statement;
  size_t i = 0;
  bool line_start = true;
  while (i < text.size()) {
    if (text.compare(i, 3, "/**") == 0 && text.compare(i, 4, "/**/") != 0) {
      const size_t end = text.find("*/", i + 3);
      doc = text.substr(i + 3, end == std::string::npos ? std::string::npos : end - i - 3);
      statement.clear();
      i = end == std::string::npos ? text.size() : end + 2;
      continue;
    }
    if (text.compare(i, 2, "/*") == 0) {
      const size_t end = text.find("*/", i + 2);
      i = end == std::string::npos ? text.size() : end + 2;
      continue;
    }
    if (text.compare(i, 2, "//") == 0) {
      i = text.find('\n', i);
      if (i == std::string::npos) break;
      continue;
    }
    const char c = text[i];
    if (line_start && c == '#') {
      // Preprocessor line (with continuations): ends any pending doc comment.
      while (i < text.size() && !(text[i] == '\n' && text[i - 1] != '\\')) ++i;
      doc.clear();
      statement.clear();
      continue;
    }
    if (c == '\n') {
      line_start = true;
      statement += ' ';
      ++i;
      continue;
    }
    if (c != ' ' && c != '\t') line_start = false;
    if (c == ';' || c == '{' || c == '}') {
      // A function declaration: `c2rs_<ident>` directly followed by '('.
      size_t at = statement.find("c2rs_");
      while (at != std::string::npos) {
        size_t end = at;
        while (end < statement.size() &&
               (std::isalnum(static_cast<unsigned char>(statement[end])) || statement[end] == '_')) {
          ++end;
        }
        size_t paren = end;
        while (paren < statement.size() && statement[paren] == ' ') ++paren;
        const bool boundary = at == 0 || !(std::isalnum(static_cast<unsigned char>(statement[at - 1])) ||
                                            statement[at - 1] == '_');
        if (boundary && paren < statement.size() && statement[paren] == '(' && c == ';') {
          out.push_back({statement.substr(at, end - at), doc});
          break;
        }
        at = statement.find("c2rs_", end);
      }
      doc.clear();
      statement.clear();
      ++i;
      continue;
    }
    statement += c;
    ++i;
  }
  return out;
}

std::string header_text() {
  return c2rs_test::read_text(c2rs_test::source_path("include/caffe2rs.h"));
}

// Path of the caffe2rs shared object this process loaded.
std::string loaded_library_path() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&c2rs_abi_version), &info) == 0 || info.dli_fname == nullptr) {
    return "";
  }
  return info.dli_fname;
}

}  // namespace

TEST(HeaderAbi, MacrosMatchTheLoadedLibrary) {
  const uint32_t loaded = c2rs_abi_version();
  EXPECT_EQ(loaded >> 16, static_cast<uint32_t>(C2RS_ABI_MAJOR));
  EXPECT_EQ(loaded & 0xffffu, static_cast<uint32_t>(C2RS_ABI_MINOR));
  const std::string version = c2rs_version_string();
  EXPECT_NE(version.find("abi " + std::to_string(C2RS_ABI_MAJOR) + "." +
                         std::to_string(C2RS_ABI_MINOR)),
            std::string::npos)
      << version;
}

TEST(HeaderAbi, SonameIsTheAbiMajor) {
  const std::string path = loaded_library_path();
  ASSERT_FALSE(path.empty());
  const std::string want = ".so." + std::to_string(C2RS_ABI_MAJOR);
  // Loaded through the SONAME link (or the versioned file it points to).
  EXPECT_NE(path.find("libcaffe2rs" + want), std::string::npos) << path;
}

TEST(HeaderStatus, LibraryNamesEveryStatusMacro) {
  const std::map<int32_t, std::string> names = {
      {C2RS_OK, "C2RS_OK"},
      {C2RS_ENFORCE_NOT_MET, "C2RS_ENFORCE_NOT_MET"},
      {C2RS_INVALID_ARGUMENT, "C2RS_INVALID_ARGUMENT"},
      {C2RS_NOT_FOUND, "C2RS_NOT_FOUND"},
      {C2RS_ALREADY_EXISTS, "C2RS_ALREADY_EXISTS"},
      {C2RS_TYPE_MISMATCH, "C2RS_TYPE_MISMATCH"},
      {C2RS_SCHEMA_MISMATCH, "C2RS_SCHEMA_MISMATCH"},
      {C2RS_UNSUPPORTED, "C2RS_UNSUPPORTED"},
      {C2RS_RUN_FAILED, "C2RS_RUN_FAILED"},
      {C2RS_PARSE_ERROR, "C2RS_PARSE_ERROR"},
      {C2RS_CLOSED, "C2RS_CLOSED"},
      {C2RS_TIMEOUT, "C2RS_TIMEOUT"},
      {C2RS_IO_ERROR, "C2RS_IO_ERROR"},
      {C2RS_PANIC, "C2RS_PANIC"},
      {C2RS_INTERNAL, "C2RS_INTERNAL"},
  };
  for (const auto& [code, name] : names) EXPECT_EQ(c2rs_status_name(code), name);
  EXPECT_STREQ(c2rs_status_name(C2RS_INTERNAL + 1), "C2RS_UNKNOWN_STATUS");
  EXPECT_STREQ(c2rs_status_name(-1), "C2RS_UNKNOWN_STATUS");
}

TEST(HeaderDocs, ScannerFindsDeclarationsAndTheirDocs) {
  // The scanner itself, on a sample: a documented, an undocumented and a multi-line function;
  // macros, typedefs and function pointers are not functions.
  const std::string sample =
      "/* plain */\n#define C2RS_X 1\n/** Doc A.\n * Returns: x. */\nint32_t c2rs_a(int x);\n"
      "typedef struct c2rs_t c2rs_t;\nvoid (*fp)(c2rs_t* c2rs_p);\n"
      "void c2rs_b(void);\n/** Doc C */\nC2RS_NODISCARD\nint32_t c2rs_c(const c2rs_t *t,\n"
      "    size_t n);\n";
  const std::vector<Declaration> d = declared_functions(sample);
  ASSERT_EQ(d.size(), 3u);
  EXPECT_EQ(d[0].name, "c2rs_a");
  EXPECT_NE(d[0].doc.find("Returns:"), std::string::npos);
  EXPECT_EQ(d[1].name, "c2rs_b");
  EXPECT_EQ(d[1].doc, "");
  EXPECT_EQ(d[2].name, "c2rs_c");
  EXPECT_NE(d[2].doc.find("Doc C"), std::string::npos);
}

TEST(HeaderDocs, EveryFunctionStatesThreadSafetyAndReturns) {
  const std::vector<Declaration> decls = declared_functions(header_text());
  ASSERT_GE(decls.size(), 20u) << "the header declares too few functions: scanner broken?";
  for (const Declaration& d : decls) {
    EXPECT_NE(d.doc.find("Thread safety:"), std::string::npos)
        << d.name << " lacks a `Thread safety:` line in its doc comment";
    EXPECT_NE(d.doc.find("Returns:"), std::string::npos)
        << d.name << " lacks a `Returns:` line in its doc comment";
  }
}

TEST(HeaderSymbols, ExportedSymbolsEqualDeclaredFunctions) {
  std::set<std::string> declared;
  for (const Declaration& d : declared_functions(header_text())) {
    EXPECT_TRUE(declared.insert(d.name).second) << d.name << " declared twice";
  }
  ASSERT_TRUE(declared.count("c2rs_tensor_new"));

  const std::string library = loaded_library_path();
  ASSERT_FALSE(library.empty());
  const std::string command = "nm -D --defined-only '" + library + "'";
  FILE* pipe = popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr) << command;
  std::set<std::string> exported;
  char line[1024];
  while (std::fgets(line, sizeof line, pipe) != nullptr) {
    // "<address> <type> <name>"
    std::string s(line);
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
    const size_t space = s.rfind(' ');
    const std::string name = space == std::string::npos ? s : s.substr(space + 1);
    if (name.rfind("c2rs_", 0) == 0) exported.insert(name);
  }
  ASSERT_EQ(pclose(pipe), 0) << command << " failed (is binutils installed?)";
  ASSERT_FALSE(exported.empty()) << library;

  for (const std::string& name : exported) {
    EXPECT_TRUE(declared.count(name)) << name << " is exported by " << library
                                      << " but not declared in caffe2rs.h";
  }
  for (const std::string& name : declared) {
    EXPECT_TRUE(exported.count(name)) << name << " is declared in caffe2rs.h but not exported";
  }
}

TEST(HeaderFree, EveryDeclaredFreeFunctionAcceptsNull) {
  // Every `c2rs_*_free` the header declares (other areas' included) is looked up in the loaded
  // library and called with NULL: it must be a no-op (ARCHITECTURE.md convention 3).
  size_t called = 0;
  for (const Declaration& d : declared_functions(header_text())) {
    const std::string suffix = "_free";
    if (d.name.size() <= suffix.size() ||
        d.name.compare(d.name.size() - suffix.size(), suffix.size(), suffix) != 0) {
      continue;
    }
    void* symbol = dlsym(RTLD_DEFAULT, d.name.c_str());
    ASSERT_NE(symbol, nullptr) << d.name;
    // Every *_free takes one handle pointer and returns nothing.
    auto free_fn = reinterpret_cast<void (*)(void*)>(symbol);
    free_fn(nullptr);
    ++called;
  }
  EXPECT_GE(called, 4u) << "buffer, string list, tensor and tensor list frees at least";
}
