// Durations as people read them, for progress lines and summaries.
#pragma once
#include <string>

namespace vitlab {

std::string format_duration(double seconds);  // "1h02m", "3m05s", "42s"; "?" when not finite

}  // namespace vitlab
