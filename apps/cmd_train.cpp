#include "apps/commands.h"
#include "core/error.h"
namespace vitlab::app {
int cmd_train(int, char**) { throw UserError("train: not built yet"); }
int cmd_eval(int, char**) { throw UserError("eval: not built yet"); }
}  // namespace vitlab::app
