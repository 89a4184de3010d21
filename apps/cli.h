// cxxopts for every subcommand. Repeatable options such as `--set model.resnet_layers=[1,1,1]` carry
// JSON values with commas, so cxxopts must not split option values at commas: each occurrence of
// the option is one value.
#pragma once
#define CXXOPTS_VECTOR_DELIMITER '\0'
#include <cxxopts.hpp>
