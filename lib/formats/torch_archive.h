// Checks a LibTorch archive (what torch::save and torch::serialize::OutputArchive write) before
// LibTorch reads it. LibTorch 1.13's reader trusts the sizes a file declares: a pickle string
// length makes it allocate up to 4 GiB, a memo index up to 64 GiB, and a record whose CRC does
// not match leaks inside its zip reader (all found by fuzzing the checkpoint loader,
// tests/fuzz/README.md). A file that passes this check declares no size larger than itself, so
// what LibTorch then allocates is bounded by the file.
//
// The archive is a zip (PKWARE APPNOTE 6.3) of stored records (LibTorch deflates only the
// TorchScript sources it adds), zip64 when large; its `.pkl` records are pickles (Python's
// pickletools documents the opcodes) whose tensors name other records. Checked here:
// - the end-of-central-directory record (zip64 too) and every central-directory entry lie
//   inside the file;
// - every record is stored or deflated, lies inside the file before the central directory, and
//   yields exactly the size and CRC-32 the directory gives (deflated ones are inflated to see);
// - every pickle record (`.pkl`, `.debug_pkl`) passes check_pickle.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace vitlab {

// Throws IoError "<path>: not a valid LibTorch archive (corrupt or truncated?): <what is wrong>"
// (or "<path>: cannot open/read ..."). Reads the whole file once, in 1 MiB pieces.
void check_torch_archive(const std::string& path);

// Checks one pickle: known opcodes only, every length operand no larger than the bytes left,
// memo indices dense (a put names at most the next free slot, a get only a filled one), and the
// pickle ends with STOP. Throws IoError "<where>: <what is wrong> at byte <offset>".
void check_pickle(std::string_view bytes, const std::string& where);

}  // namespace vitlab
