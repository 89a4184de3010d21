// The `vitlab` subcommands. Each is thin: parse options with cxxopts, call the library.
#pragma once
#include <string>
#include <vector>

namespace vitlab::app {

using CommandFn = int (*)(int argc, char** argv);

struct Command {
  const char* name;
  const char* summary;
  CommandFn run;
  // Trains or evaluates models on the CPU (itself or through child runs): gets the CPU runtime
  // settings of core/cpu_runtime.h, whose re-execution costs about half a second at start-up.
  bool cpu_compute = false;
};

// The explicit command table, in help order.
const std::vector<Command>& commands();

int cmd_models(int argc, char** argv);
int cmd_config(int argc, char** argv);
int cmd_train(int argc, char** argv);
int cmd_eval(int argc, char** argv);
int cmd_sweep(int argc, char** argv);
int cmd_summarize(int argc, char** argv);
int cmd_export(int argc, char** argv);
int cmd_import(int argc, char** argv);
int cmd_analyze(int argc, char** argv);
int cmd_report(int argc, char** argv);
int cmd_bench(int argc, char** argv);
int cmd_data(int argc, char** argv);

}  // namespace vitlab::app
