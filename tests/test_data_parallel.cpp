// Data-parallel training on CPU (Gloo), with processes started the way torchrun starts them (the
// rendezvous variables in the environment): two ranks train the same weights as one process on
// the combined batch; bad rendezvous input, mismatched configs and a batch that does not split
// exit with status 2 within the timeout; a rank killed mid-run stops the other with an error. The
// rank monitor that does this on GPUs (NCCL collectives wait forever) is tested in one process.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <atomic>
#include <future>
#include <mutex>
#include <thread>

#include "train/checkpoint.h"
#include "train/data_parallel.h"
#include "train/gradient_sync.h"
#include "train/process_group.h"
#include "train/rank_monitor.h"
#include "test_helpers.h"

using namespace vitlab;
using test::run_vitlab;
using test::TempDir;
namespace fs = std::filesystem;

namespace {

// A port nobody listens on now, picked by the kernel (ctest may run other tests beside this one).
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  socklen_t size = sizeof addr;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &size) == 0);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// The environment torchrun gives rank `rank`, and a time limit: a test that would hang fails.
std::string rank_env(int rank, int world, int port) {
  return fmt::format("RANK={} LOCAL_RANK={} WORLD_SIZE={} MASTER_ADDR=127.0.0.1 MASTER_PORT={} timeout -k 5 150",
                     rank, rank, world, port);
}

// Plain SGD without augmentation: one process and two ranks then compute the same sums in
// another order only, so their weights agree to float rounding.
Json dp_config(int epochs) {
  Json c = test::tiny_base(epochs);
  c["train"]["optimizer"] = "sgd";
  c["train"]["lr"] = 0.05;
  c["train"]["grad_clip"] = 1.0;
  c["train"]["threads"] = 1;
  c["data"]["val_size"] = 30;
  return c;
}

struct TwoRanks {
  test::CommandResult rank0, rank1;
};

TwoRanks run_two(const std::string& args0, const std::string& args1, int port) {
  auto second = std::async(std::launch::async, [&] { return run_vitlab(args1, rank_env(1, 2, port)); });
  TwoRanks r;
  r.rank0 = run_vitlab(args0, rank_env(0, 2, port));
  r.rank1 = second.get();
  return r;
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

TEST_CASE("torchrun's variables: alone without them, errors naming the one that is wrong", "[dist]") {
  const auto env = [](std::map<std::string, std::string> vars) {
    return [vars](const char* name) -> const char* {
      const auto it = vars.find(name);
      return it == vars.end() ? nullptr : it->second.c_str();
    };
  };
  CHECK_FALSE(read_dist_env(env({})).distributed());
  CHECK_FALSE(read_dist_env(env({{"WORLD_SIZE", "1"}, {"RANK", "0"}})).distributed());
  const DistEnv e = read_dist_env(env({{"WORLD_SIZE", "4"}, {"RANK", "3"}, {"LOCAL_RANK", "1"},
                                       {"LOCAL_WORLD_SIZE", "2"},
                                       {"MASTER_ADDR", "node0"}, {"MASTER_PORT", "29500"},
                                       {"TORCHELASTIC_USE_AGENT_STORE", "True"},
                                       {"TORCHELASTIC_RESTART_COUNT", "2"}}));
  CHECK(e.distributed());
  CHECK(e.rank == 3);
  CHECK(e.local_rank == 1);
  CHECK(e.local_world_size == 2);
  CHECK(read_dist_env(env({{"WORLD_SIZE", "2"}, {"RANK", "1"}, {"MASTER_ADDR", "h"},
                           {"MASTER_PORT", "1"}})).local_world_size == 1);  // not torchrun
  CHECK(e.master_addr == "node0");
  CHECK(e.master_port == 29500);
  CHECK(e.agent_store);
  CHECK(e.store_prefix == "vitlab/2/");
  const std::map<std::string, std::string> good = {
      {"WORLD_SIZE", "2"}, {"RANK", "1"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "29500"}};
  const auto fails_naming = [&](std::map<std::string, std::string> vars, const std::string& name) {
    INFO(name);
    try {
      read_dist_env(env(vars));
      FAIL("no error");
    } catch (const UserError& err) {
      CHECK(std::string(err.what()).find(name) != std::string::npos);
    }
  };
  fails_naming({{"RANK", "0"}}, "WORLD_SIZE");
  for (const char* name : {"RANK", "MASTER_ADDR", "MASTER_PORT"}) {
    auto vars = good;
    vars.erase(name);
    fails_naming(vars, name);
  }
  auto vars = good;
  vars["RANK"] = "2";  // outside 0..WORLD_SIZE-1
  fails_naming(vars, "RANK");
  vars = good;
  vars["MASTER_PORT"] = "http";
  fails_naming(vars, "MASTER_PORT");
  vars = good;
  vars["WORLD_SIZE"] = "0";
  fails_naming(vars, "WORLD_SIZE");
  vars = good;
  vars["LOCAL_WORLD_SIZE"] = "3";  // more ranks on this machine than in all
  fails_naming(vars, "LOCAL_WORLD_SIZE");

  // The gradient-averaging engine (for measuring one against the other).
  CHECK(read_dist_env(env(good)).gradient_sync == "buckets");
  vars = good;
  vars["VITLAB_GRADIENT_SYNC"] = "buckets-eager";
  CHECK(read_dist_env(env(vars)).gradient_sync == "buckets-eager");
  for (const char* wrong : {"ddp", "buckets-eagerly", "reducer-", "-eager"}) {
    vars["VITLAB_GRADIENT_SYNC"] = wrong;
    fails_naming(vars, "VITLAB_GRADIENT_SYNC");
  }
  vars["VITLAB_GRADIENT_SYNC"] = "reducer";
  if (reducer_available()) CHECK(read_dist_env(env(vars)).gradient_sync == "reducer");
  else fails_naming(vars, "VITLAB_GRADIENT_SYNC=reducer");  // Debian's headers lack what it needs
}

TEST_CASE("two Gloo ranks train the weights one process trains on the combined batch", "[dist][cli]") {
  SKIP_WITHOUT_GLOO();
  TempDir dir;
  const std::string config = dir.file("c.json");
  test::write_text(config, dp_config(2).dump());
  const auto one = run_vitlab("train " + config + " --out " + dir.file("one") + " --quiet");
  REQUIRE(one.exit_code == 0);
  // Rank 1 names another folder: it must write nothing there (rank 0 writes the run's files).
  const auto two = run_two("train " + config + " --out " + dir.file("two") + " --quiet",
                           "train " + config + " --out " + dir.file("rank1") + " --quiet", free_port());
  INFO(two.rank0.output << two.rank1.output);
  // Completed means every epoch's weight checksum agreed across the ranks (the trainer checks).
  REQUIRE(two.rank0.exit_code == 0);
  REQUIRE(two.rank1.exit_code == 0);
  CHECK_FALSE(fs::exists(dir.file("rank1")));

  const Json r1 = Json::parse(test::read_text(dir.file("one/result.json")));
  const Json r2 = Json::parse(test::read_text(dir.file("two/result.json")));
  CHECK(r2["world_size"] == 2);
  CHECK(r1["world_size"] == 1);
  CHECK(r2["steps"] == r1["steps"]);
  CHECK(r2["test_accuracy"].get<double>() == Approx(r1["test_accuracy"].get<double>()).margin(0.02));
  CHECK(r2["test_loss"].get<double>() == Approx(r1["test_loss"].get<double>()).epsilon(1e-4));
  const Checkpoint a = load_checkpoint(dir.file("one/checkpoints/last.pt"));
  const Checkpoint b = load_checkpoint(dir.file("two/checkpoints/last.pt"));
  CHECK(b.world_size == 2);
  REQUIRE(a.model.size() == b.model.size());
  for (size_t i = 0; i < a.model.size(); ++i) {
    INFO(a.model[i].first);
    CHECK(a.model[i].first == b.model[i].first);
    CHECK(test::allclose_as_float(a.model[i].second, b.model[i].second, 1e-4, 1e-5));
  }
  // The metrics are reduced over the ranks: the epoch's mean loss is the one process's.
  const auto last_record = [](const std::string& path) {
    const std::string text = test::read_text(path);
    const auto lines = text.substr(0, text.size() - 1);
    return Json::parse(lines.substr(lines.rfind('\n') + 1));
  };
  const Json m1 = last_record(dir.file("one/metrics.jsonl")), m2 = last_record(dir.file("two/metrics.jsonl"));
  CHECK(m2["train_loss"].get<double>() == Approx(m1["train_loss"].get<double>()).epsilon(1e-4));
  CHECK(m2["val_accuracy"].get<double>() == Approx(m1["val_accuracy"].get<double>()).margin(0.04));

  // Resume: at the same world size it continues; at another it says what to do.
  Json longer = dp_config(3);
  test::write_text(config, longer.dump());
  const auto alone = run_vitlab("train --resume " + dir.file("two") + " --quiet");
  CHECK(alone.exit_code == 2);
  CHECK(alone.output.find("WORLD_SIZE 2") != std::string::npos);
}

TEST_CASE("two Gloo ranks streaming an image folder train what one process trains",
          "[dist][cli][streaming]") {
  SKIP_WITHOUT_GLOO();
  TempDir dir;
  const std::string root = dir.file("folder");
  test::write_png_split(root, "train", 16);
  test::write_png_split(root, "test", 3);
  Json c = dp_config(2);
  c["model"] = test::tiny_folder_model();
  c["data"] = {{"dataset", "image-folder"},
               {"path", root},
               {"image_size", 8},
               {"streaming", "on"},
               {"augment", {{"random_resized_crop", true}, {"flip", true}, {"random_erasing", 0.5}}},
               {"decode_threads", 1}};
  c["train"]["batch_size"] = 8;
  const std::string config = dir.file("c.json");
  // The config trained by one process into `name`-one and by two ranks into `name`-two: the two
  // runs' results, after checking that their weights agree.
  const auto one_and_two = [&](const std::string& name) {
    test::write_text(config, c.dump());
    const auto one = run_vitlab("train " + config + " --out " + dir.file(name + "-one") + " --quiet");
    INFO(one.output);
    REQUIRE(one.exit_code == 0);
    const std::string command = "train " + config + " --out " + dir.file(name + "-two") + " --quiet";
    const auto two = run_two(command, command, free_port());
    INFO(two.rank0.output << two.rank1.output);
    REQUIRE(two.rank0.exit_code == 0);
    REQUIRE(two.rank1.exit_code == 0);
    const Checkpoint a = load_checkpoint(dir.file(name + "-one/checkpoints/last.pt"));
    const Checkpoint b = load_checkpoint(dir.file(name + "-two/checkpoints/last.pt"));
    REQUIRE(a.model.size() == b.model.size());
    for (size_t i = 0; i < a.model.size(); ++i) {
      INFO(a.model[i].first);
      CHECK(test::allclose_as_float(a.model[i].second, b.model[i].second, 1e-4, 1e-5));
    }
    return std::make_pair(Json::parse(test::read_text(dir.file(name + "-one/result.json"))),
                          Json::parse(test::read_text(dir.file(name + "-two/result.json"))));
  };
  // Each rank decodes only its half of every global batch; the crops are drawn per slot of the
  // global order, and flips and erasing for the rank's rows of the global batch, so the two
  // halves are what the one process decoded and augmented.
  const auto [r1, r2] = one_and_two("plain");
  CHECK(r2["streamed"].get<bool>());
  CHECK(r2["world_size"] == 2);
  CHECK(r2["test_loss"].get<double>() == Approx(r1["test_loss"].get<double>()).epsilon(1e-4));
  // Mixup and cutmix pair each row with its mirror row, which the other rank decoded: the ranks
  // sum their shares into the whole global batch first, so they train what one process trains.
  c["data"]["augment"]["mixup_alpha"] = 0.8;
  c["data"]["augment"]["cutmix_alpha"] = 1.0;
  c["data"]["augment"]["mix_prob"] = 1.0;
  const auto [m1, m2] = one_and_two("mixed");
  CHECK(m2["test_loss"].get<double>() == Approx(m1["test_loss"].get<double>()).epsilon(1e-4));
  CHECK(m2["test_loss"].get<double>() != Approx(r1["test_loss"].get<double>()).epsilon(1e-4));
}

TEST_CASE("data-parallel bad input exits 2 within the timeout", "[dist][cli]") {
  SKIP_WITHOUT_GLOO();
  TempDir dir;
  const std::string config = dir.file("c.json");
  test::write_text(config, dp_config(1).dump());
  const std::string train = "train " + config + " --quiet --dist-timeout 60 --out ";

  SECTION("a global batch that does not split into equal shares") {
    const auto r = run_vitlab(train + dir.file("a"), "RANK=0 WORLD_SIZE=3 MASTER_ADDR=127.0.0.1 MASTER_PORT=1 timeout 150");
    CHECK(r.exit_code == 2);
    CHECK(r.output.find("train.batch_size") != std::string::npos);
    CHECK(r.output.find("WORLD_SIZE 3") != std::string::npos);
  }
  SECTION("missing rendezvous variables") {
    const auto r = run_vitlab(train + dir.file("a"), "RANK=0 WORLD_SIZE=2 MASTER_PORT=1 timeout 150");
    CHECK(r.exit_code == 2);
    CHECK(r.output.find("MASTER_ADDR") != std::string::npos);
  }
  SECTION("an unreachable master") {
    const auto start = std::chrono::steady_clock::now();
    const auto r = run_vitlab("train " + config + " --quiet --dist-timeout 3 --out " + dir.file("a"),
                              rank_env(1, 2, free_port()));
    CHECK(r.exit_code == 2);
    CHECK(r.output.find("could not reach") != std::string::npos);
    CHECK(seconds_since(start) < 30);
    CHECK_FALSE(fs::exists(dir.file("a")));
  }
  SECTION("ranks started with different configs") {
    const auto two = run_two(train + dir.file("a"), train + dir.file("a") + " --set train.lr=0.1", free_port());
    INFO(two.rank0.output << two.rank1.output);
    CHECK(two.rank0.exit_code == 2);
    CHECK(two.rank1.exit_code == 2);
    CHECK(two.rank0.output.find("the resolved config differs between rank 0 and rank(s) 1") != std::string::npos);
    CHECK_FALSE(fs::exists(dir.file("a")));
  }
}

TEST_CASE("a rank killed mid-run stops the other with an error, not a hang, and both resume", "[dist][cli]") {
  SKIP_WITHOUT_GLOO();
  TempDir dir;
  const std::string config = dir.file("c.json");
  Json c = dp_config(200);  // long enough to be killed in
  test::write_text(config, c.dump());
  const int port = free_port();
  // Rank 1 first, as a child of this process so that it can be killed; the environment is set
  // for it before rank 0's thread exists (setenv is not thread-safe).
  for (const auto& [name, value] : std::map<std::string, std::string>{
           {"RANK", "1"}, {"LOCAL_RANK", "1"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "127.0.0.1"},
           {"MASTER_PORT", std::to_string(port)}})
    setenv(name.c_str(), value.c_str(), 1);
  const pid_t rank1 = test::spawn_vitlab({"train", config, "--quiet", "--dist-timeout", "10", "--out", dir.file("r1")});
  for (const char* name : {"RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"}) unsetenv(name);
  auto rank0 = std::async(std::launch::async, [&] {
    return run_vitlab("train " + config + " --quiet --dist-timeout 10 --out " + dir.file("run"), rank_env(0, 2, port));
  });
  REQUIRE(test::wait_for_file(dir.file("run/checkpoints/last.pt"), 120));  // an epoch is done
  const auto killed = std::chrono::steady_clock::now();
  REQUIRE(test::kill_and_wait(rank1));
  REQUIRE(rank0.wait_for(std::chrono::seconds(60)) == std::future_status::ready);
  const auto r = rank0.get();
  INFO(r.output);
  CHECK(seconds_since(killed) < 30);
  CHECK(r.exit_code == 1);
  const Json result = Json::parse(test::read_text(dir.file("run/result.json")));
  CHECK(result["status"] == "failed");
  CHECK_FALSE(result["error"].get<std::string>().empty());
  CHECK(load_checkpoint(dir.file("run/checkpoints/last.pt")).epochs_done >= 1);

  // Both ranks resume it from rank 0's checkpoint, at the same world size.
  const auto resumed = run_two("train --quiet --resume " + dir.file("run"), "train --quiet --resume " + dir.file("run"),
                               free_port());
  INFO(resumed.rank0.output << resumed.rank1.output);
  CHECK(resumed.rank0.exit_code == 0);
  CHECK(resumed.rank1.exit_code == 0);
  const Json done = Json::parse(test::read_text(dir.file("run/result.json")));
  CHECK(done["status"] == "completed");
  CHECK(done["epochs_completed"] == 200);
}

TEST_CASE("torchrun starts the ranks: one node, and two nodes on one machine", "[dist][cli][torchrun]") {
  SKIP_WITHOUT_GLOO();
  // Debian's torchrun through scripts/torchrun (it explains why); both set the variables the
  // same way as PyTorch 2.x's torchrun, with the store hosted by torchrun's agent.
  const std::string torchrun = std::string(VITLAB_SOURCE_DIR) + "/scripts/torchrun";
  TempDir dir;
  const std::string config = dir.file("c.json");
  test::write_text(config, dp_config(1).dump());
  const std::string train = std::string(" --no_python ") + VITLAB_BINARY + " train " + config + " --quiet --out ";
  const auto one_node = test::run_command("timeout -k 5 150 " + torchrun + fmt::format(" --master_port {}", free_port()) +
                                  " --nproc_per_node 2" + train + dir.file("one"));
  INFO(one_node.output);
  REQUIRE(one_node.exit_code == 0);
  CHECK(Json::parse(test::read_text(dir.file("one/result.json")))["world_size"] == 2);

  const std::string node = fmt::format(" --nnodes 2 --master_addr 127.0.0.1 --master_port {} --nproc_per_node 1",
                                       free_port());
  auto node1 = std::async(std::launch::async, [&] {
    return test::run_command("timeout -k 5 150 " + torchrun + node + " --node_rank 1" + train + dir.file("node1"));
  });
  const auto node0 = test::run_command("timeout -k 5 150 " + torchrun + node + " --node_rank 0" + train + dir.file("two"));
  const auto r1 = node1.get();
  INFO(node0.output << r1.output);
  REQUIRE(node0.exit_code == 0);
  REQUIRE(r1.exit_code == 0);
  const Json a = Json::parse(test::read_text(dir.file("one/result.json")));
  const Json b = Json::parse(test::read_text(dir.file("two/result.json")));
  CHECK(b["world_size"] == 2);
  CHECK(b["test_loss"].get<double>() == Approx(a["test_loss"].get<double>()).epsilon(1e-6));
  CHECK_FALSE(fs::exists(dir.file("node1")));
}

TEST_CASE("a sweep started under torchrun's variables trains each run as one process", "[dist][cli][sweep]") {
  TempDir dir;
  Json sweep = test::tiny_sweep();
  sweep["seeds"] = {0};
  const std::string file = dir.file("s.json");
  test::write_text(file, sweep.dump());
  const auto r = run_vitlab("sweep " + file + " --out " + dir.file("out"), rank_env(0, 2, free_port()));
  INFO(r.output);
  CHECK(r.exit_code == 0);
  const Json summary = Json::parse(test::read_text(dir.file("out/summary.json")));
  CHECK(summary["runs"]["completed"] == 3);
}

TEST_CASE("a stop asked of one rank stops both at the same step, and they resume to the uninterrupted weights", "[dist][cli][interrupt]") {
  SKIP_WITHOUT_GLOO();
  TempDir dir;
  const std::string config = dir.file("c.json");
  // 8 epochs of 64 steps; the stop is asked for once the first epoch is recorded, so that it lands
  // inside a later epoch however fast the machine (3 epochs here ended in 1.5 s, before a stop
  // asked for 1.5 s after the start).
  Json c = dp_config(8);
  c["data"]["synthetic_train"] = 2048;
  c["model"]["dropout"] = 0.1;          // a random stream per rank, restored per rank
  c["data"]["augment"] = {{"random_erasing", 0.25}};
  test::write_text(config, c.dump());
  const auto whole = run_two("train " + config + " --quiet --out " + dir.file("whole"),
                             "train " + config + " --quiet --out " + dir.file("whole1"), free_port());
  REQUIRE(whole.rank0.exit_code == 0);
  REQUIRE(whole.rank1.exit_code == 0);

  const int port = free_port();
  for (const auto& [name, value] : std::map<std::string, std::string>{
           {"RANK", "1"}, {"LOCAL_RANK", "1"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "127.0.0.1"},
           {"MASTER_PORT", std::to_string(port)}})
    setenv(name.c_str(), value.c_str(), 1);
  const pid_t rank1 = test::spawn_vitlab({"train", config, "--quiet", "--out", dir.file("r1")}, dir.file("r1.log"));
  for (const char* name : {"RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"}) unsetenv(name);
  auto rank0 = std::async(std::launch::async, [&] {
    return run_vitlab("train " + config + " --quiet --out " + dir.file("run"), rank_env(0, 2, port));
  });
  REQUIRE(test::wait_for_file(dir.file("run/metrics.jsonl"), 120));
  ::kill(rank1, SIGTERM);
  CHECK(test::wait_exit_status(rank1) == 128 + SIGTERM);
  const auto r0 = rank0.get();
  INFO(r0.output << test::read_text(dir.file("r1.log")));
  CHECK(r0.exit_code == 128 + SIGTERM);
  const Json stopped = Json::parse(test::read_text(dir.file("run/result.json")));
  REQUIRE(stopped["status"] == "interrupted");
  const Checkpoint at = load_checkpoint(dir.file("run/checkpoints/last.pt"));
  REQUIRE(at.epoch_position.is_object());
  CHECK(at.epoch_position["ranks"].size() == 2);
  CHECK(at.rng.size() == 2);  // each rank's CPU generator

  const auto resumed = run_two("train --quiet --resume " + dir.file("run"), "train --quiet --resume " + dir.file("run"),
                               free_port());
  INFO(resumed.rank0.output << resumed.rank1.output);
  REQUIRE(resumed.rank0.exit_code == 0);
  REQUIRE(resumed.rank1.exit_code == 0);
  const Checkpoint a = load_checkpoint(dir.file("whole/checkpoints/last.pt"));
  const Checkpoint b = load_checkpoint(dir.file("run/checkpoints/last.pt"));
  REQUIRE(a.model.size() == b.model.size());
  for (size_t i = 0; i < a.model.size(); ++i) {
    INFO(a.model[i].first);
    CHECK(torch::equal(a.model[i].second, b.model[i].second));
  }
  CHECK(Json::parse(test::read_text(dir.file("whole/result.json")))["test_loss"] ==
        Json::parse(test::read_text(dir.file("run/result.json")))["test_loss"]);
}

TEST_CASE("vitlab --version names the data-parallel backends of this build", "[dist][cli]") {
  const std::string backends = data_parallel_backends();
  CHECK((backends == "gloo, nccl" || backends == "gloo" || backends == "nccl" || backends == "none"));
#if VITLAB_WITH_CUDA == 0 && defined(USE_C10D_GLOO)
  CHECK(backends == "gloo");  // Debian's LibTorch: Gloo, no CUDA
#endif
  const auto r = run_vitlab("--version");
  CHECK(r.exit_code == 0);
  CHECK(r.output.find(", data-parallel: " + backends + "\n") != std::string::npos);
}

#ifdef VITLAB_HAVE_C10D
TEST_CASE("the rank monitor stays quiet while every rank beats, and names the one that stopped", "[dist]") {
  using namespace std::chrono_literals;
  DistEnv base;
  base.world_size = 3;
  base.master_addr = "127.0.0.1";
  base.master_port = free_port();
  base.store_prefix = "monitor/";
  const auto timeout = 1500ms;
  auto server = connect_store(base, /*serve=*/true, 30000ms);
  std::mutex mutex;
  std::vector<std::string> reports(3);
  std::atomic<int> reported{0};
  const auto monitor = [&](int rank) {
    DistEnv env = base;
    env.rank = env.local_rank = rank;
    return std::make_unique<RankMonitor>(env, timeout, [&, rank](const std::string& message) {
      std::lock_guard<std::mutex> lock(mutex);
      reports[size_t(rank)] = message;
      ++reported;
    });
  };
  const auto wait_for_reports = [&](int n, std::chrono::seconds limit) {
    const auto start = std::chrono::steady_clock::now();
    while (reported < n && std::chrono::steady_clock::now() - start < limit) std::this_thread::sleep_for(20ms);
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  auto m0 = monitor(0), m1 = monitor(1), m2 = monitor(2);
  std::this_thread::sleep_for(2 * timeout);  // beats keep everyone heard
  CHECK(reported == 0);

  SECTION("a rank that stops is reported by the others within about the timeout") {
    m2.reset();  // gone without saying it is done: killed
    const double seconds = wait_for_reports(2, 10s);
    CHECK(reported == 2);
    CHECK(seconds < 2 * 1.5);
    for (int r : {0, 1}) CHECK(reports[size_t(r)].find("rank 2 has not been heard from") != std::string::npos);
    CHECK(reports[0].find("--resume") != std::string::npos);
    CHECK(reports[2].empty());
  }
  SECTION("a rank that is done (its run ended) is not reported when it stops") {
    m2->mark_done();
    m2.reset();
    wait_for_reports(1, 5s);  // more than 3 timeouts
    CHECK(reported == 0);
  }
  SECTION("the store going away (the process that served it ended) is reported too") {
    server.reset();
    wait_for_reports(3, 10s);
    CHECK(reported == 3);
    for (const auto& report : reports) CHECK(report.find("has not been heard from") != std::string::npos);
  }
}
#endif
