// What a sweep finds in a run's folder, and the few things it does to one: compare the stored
// config with the planned one, set a failed attempt's result aside, move a run to the trash,
// record a failure the trainer could not record itself. Nothing here deletes data.
#pragma once
#include <string>
#include <vector>

#include "config/json_reader.h"

namespace vitlab {

enum class StageState {
  kNew,        // nothing there yet
  kPartial,    // started, no result.json (killed): resumed from checkpoints/last.pt
  kInterrupted,  // stopped by SIGINT/SIGTERM after a step, result.json says so: resumed likewise
  kCompleted,  // final
  kDiverged,   // final: divergence is a result of the config, rerunning gives the same
  kFailed,     // retried on the next sweep (it may have been out of memory or killed)
};

StageState stage_state(const std::string& stage_dir);

// The config a folder holds (config.json, else result.json's copy); null when none.
Json stored_config(const std::string& stage_dir);

// The first place where two resolved configs differ, as "train.lr (0.001 there, 0.002 in the
// sweep)"; empty when equal. "device" is ignored: a run may move between devices.
std::string first_config_difference(const Json& stored, const Json& planned);

// Leaf paths where `to` differs from `from`, as `path=value` (the dry run's compact listing).
std::vector<std::string> config_differences(const Json& from, const Json& to,
                                            const std::string& path = "");

// Renames result.json of a failed attempt to result.failed-<stamp>.json so the stage can be
// retried; keeps its checkpoints for resuming.
void set_aside_failed_result(const std::string& stage_dir, const std::string& stamp);

// Moves <run_dir> to <trash_dir>/<id>-<stamp> (with a counter if taken); returns the new path.
std::string move_to_trash(const std::string& run_dir, const std::string& trash_dir,
                          const std::string& id, const std::string& stamp);

// Writes result.json with status "failed" for a trainer that died without writing one.
void record_stage_failure(const std::string& stage_dir, const std::string& error);

// The last "error: ..." line of a log file (what `vitlab train` printed before exiting).
std::string last_error_in_log(const std::string& log_file);

// A run's outcome over its stages (stage names empty for single-stage runs).
struct RunOutcome {
  std::string status;  // completed | diverged | failed | interrupted | pending
  std::string error;   // for staged runs prefixed with "stage <name>: "
  Json result;         // the last (or the failing) stage's result.json; null when none
  double train_seconds = 0;  // summed over the stages
};
RunOutcome read_run_outcome(const std::string& run_dir, const std::vector<std::string>& stages);

// Local time as 20240131-154502, for trash and set-aside names.
std::string timestamp_now();

}  // namespace vitlab
