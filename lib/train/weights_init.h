// Starting a run from existing weights (`init_from`): a vitlab checkpoint's model weights.
#pragma once
#include <string>

#include "models/classifier.h"

namespace vitlab {

// Loads the model weights stored at `path` into `model`. The head is kept from the file only
// when its shape fits; otherwise it stays freshly initialised (transfer to another class count).
// IoError naming the file when the file is unreadable or the backbone does not fit.
void init_weights_from(ImageClassifierImpl& model, const std::string& path);

}  // namespace vitlab
