// The test runner's main. Tests that need CUDA are tagged [cuda] and skip themselves on CPU.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include "models/parts.h"

int main(int argc, char** argv) {
  vitlab::install_model_part_checks();  // as the program's main does
  return Catch::Session().run(argc, argv);
}
