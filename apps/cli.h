// cxxopts for every subcommand. Repeatable options such as `--set model.resnet_layers=[1,1,1]` carry
// JSON values with commas, so cxxopts must not split option values at commas: each occurrence of
// the option is one value.
#pragma once
#define CXXOPTS_VECTOR_DELIMITER '\0'
#include <cxxopts.hpp>
#include <fmt/format.h>

#include <string>

#include "config/json_reader.h"
#include "core/error.h"

namespace vitlab::app {

// The value an enum-valued option names by its config names table (`--format safetensors`):
// UserError naming the option and the choices for any other text.
template <typename E>
E parse_option_enum(const std::string& option, const std::string& text, const EnumNames<E>& names) {
  for (const auto& [value, name] : names)
    if (text == name) return value;
  throw UserError(
      fmt::format("--{}: \"{}\" is not one of {}", option, text, enum_choices(names)));
}

}  // namespace vitlab::app
