// Error types. A UserError is a problem with what the user gave us (a config, a data file, a
// checkpoint, an output folder): the program prints its message and exits with status 2.
// Anything else is a bug in vitlab and exits with status 1.
#pragma once
#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace vitlab {

class UserError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A bad configuration value; the message names the JSON path (e.g. `model.patch_size`).
class ConfigError : public UserError {
 public:
  using UserError::UserError;
};

// A missing, truncated or corrupt data set or image; the message names the file.
class DataError : public UserError {
 public:
  using UserError::UserError;
};

// A file that cannot be read or written, or a checkpoint/weights file that is invalid.
class IoError : public UserError {
 public:
  using UserError::UserError;
};

// Throws E with a fmt-formatted message.
template <typename E = UserError, typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw E(fmt::format(format, std::forward<Args>(args)...));
}

constexpr int kExitUserError = 2;
constexpr int kExitInternalError = 1;

}  // namespace vitlab
