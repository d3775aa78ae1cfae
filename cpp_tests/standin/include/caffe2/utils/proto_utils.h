// Stand-in for Caffe2's caffe2/utils/proto_utils.h (see caffe2/core/standin.h): MakeArgument
// and CreateOperatorDef with the same names and argument order, for host code that builds defs.
#ifndef C2RS_STANDIN_PROTO_UTILS_H
#define C2RS_STANDIN_PROTO_UTILS_H

#include <string>
#include <type_traits>
#include <vector>

#include "caffe2/core/standin.h"

namespace caffe2 {

template <typename T>
Argument MakeArgument(const std::string& name, const T& value) {
  Argument a;
  a.name = name;
  if constexpr (std::is_same<T, std::string>::value) {
    a.s = value;
    a.has_s = true;
  } else if constexpr (std::is_floating_point<T>::value) {
    a.f = static_cast<float>(value);
    a.has_f = true;
  } else {
    a.i = static_cast<int64_t>(value);
    a.has_i = true;
  }
  return a;
}

inline OperatorDef CreateOperatorDef(const std::string& type, const std::string& /*name*/,
                                     const std::vector<std::string>& inputs,
                                     const std::vector<std::string>& outputs,
                                     const std::vector<Argument>& args = {}) {
  OperatorDef d;
  d.set_type(type);
  for (const auto& i : inputs) d.add_input(i);
  for (const auto& o : outputs) d.add_output(o);
  d.args() = args;
  return d;
}

}  // namespace caffe2

#endif  // C2RS_STANDIN_PROTO_UTILS_H
