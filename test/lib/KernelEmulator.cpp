//===- KernelEmulator.cpp - GPU kernels run on the host, thread by thread -===//
//
// Each GPU thread of a block is a ucontext fiber. The scheduler resumes
// every runnable thread in turn until it suspends (at a barrier, a warp
// synchronisation or a shuffle) or returns, then releases whatever can go
// on: a warp whose 32 lanes all wait at a warp operation, or the block once
// every thread waits at the barrier. When nothing can, the launch would
// hang on a GPU, and the emulator says so. A thread about to access a
// memref out of bounds stops there and fails the launch, as does one about
// to access a word of shared memory that another thread accessed, one of
// the two accesses a write, with no barrier or warp sync between them, or
// an element of global memory another block wrote in the launch without
// the fence, atomic and fence that hand it over. Threads
// run in a new random order each round, blocks in a random order, and shared
// memory starts each block poisoned, so that a kernel that counts on an order
// or an initial value CUDA does not promise fails.
//
//===----------------------------------------------------------------------===//

#include "KernelEmulator.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <numeric>
#include <random>
#include <unordered_map>
#include <vector>

#include <ucontext.h>

#if defined(__SANITIZE_ADDRESS__)
#define SWAN_EMULATOR_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SWAN_EMULATOR_ASAN 1
#endif
#endif
#ifdef SWAN_EMULATOR_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

namespace abi = swan::emulator_abi;

namespace {

constexpr int64_t kWarpSize = 32;
constexpr int64_t kMaxThreads = 1024;
// The host kernels need a few KiB; ASan's redzones and the emulator's own
// frames the rest.
constexpr size_t kStackBytes = 256 * 1024;

// Faulted: stopped at an access out of bounds or a race, never resumed.
enum class Wait { None, Barrier, SyncWarp, Shuffle, Done, Faulted };

struct Thread {
  ucontext_t context;
  char *stack = nullptr;
  Wait wait = Wait::None;
  int64_t id[3] = {0, 0, 0};
  int32_t index = 0; // in the block, x fastest
  int64_t lane = 0;
  // The pending warp operation and its result.
  int32_t value = 0, offset = 0, width = 0, mode = 0, mask = 0, result = 0;
  void *fakeStack = nullptr; // ASan's, while the fiber is switched out
  // The handover check: global elements written since the thread's last
  // fence, and whether it fenced after its block counted itself (an
  // atomic), so that it may read what other blocks released.
  std::vector<int64_t> unfenced;
  bool acquired = false;
};

/// One thread's access to a word of shared memory, with the barriers and
/// its warp's syncs released before it.
struct WordAccess {
  int32_t thread = -1; // none
  uint32_t barriers = 0, warpSyncs = 0;
  const char *what = nullptr;
};

/// The last write of an element of global memory in this launch: which
/// block and thread, whether that thread fenced it since.
struct GlobalWrite {
  int64_t block = 0; // linear, x fastest
  int32_t thread = 0;
  bool fenced = false;
  const char *what = nullptr;
};

/// A word's last write and up to two reads since, all of the block
/// `block`; an older block's are forgotten.
struct SharedWord {
  uint32_t block = 0;
  WordAccess write, reads[2];
};

struct Launch {
  const abi::EmulatedKernel *kernel = nullptr;
  void **params = nullptr;
  int64_t grid[3] = {1, 1, 1}, block[3] = {1, 1, 1}, blockId[3] = {0, 0, 0};
  std::vector<Thread> threads;
  Thread *current = nullptr;
  ucontext_t scheduler;
  std::minstd_rand order;
  const void *schedulerStack = nullptr;
  size_t schedulerStackBytes = 0;
  std::string error;
  // The race check: the block's barriers and each warp's syncs so far, and
  // the accesses to each word of each shared buffer.
  uint32_t blockSerial = 0;
  uint32_t barriers = 0;
  std::vector<uint32_t> warpSyncs;
  std::vector<std::vector<SharedWord>> shadow;
  // The handover check: each global element written in the launch, by
  // address, and whether the running block has counted itself.
  std::unordered_map<int64_t, GlobalWrite> globalWrites;
  bool counted = false;
};

/// The launch in progress; launches are serialised.
Launch *active = nullptr;

/// Fiber stacks, kept between launches.
std::vector<std::unique_ptr<char[]>> stacks;

// ASan must be told when a fiber switch changes the stack.
void startSwitch(void **fakeStack, const void *bottom, size_t bytes) {
#ifdef SWAN_EMULATOR_ASAN
  __sanitizer_start_switch_fiber(fakeStack, bottom, bytes);
#endif
}
void finishSwitch(void *fakeStack, const void **bottom, size_t *bytes) {
#ifdef SWAN_EMULATOR_ASAN
  __sanitizer_finish_switch_fiber(fakeStack, bottom, bytes);
#endif
}

/// Abandons the fibers of a failed block that never returned: their frames'
/// redzones would stay poisoned on stacks the next launch reuses.
void abandon(Launch &l) {
#ifdef SWAN_EMULATOR_ASAN
  for (Thread &t : l.threads)
    if (t.wait != Wait::Done)
      __asan_unpoison_memory_region(t.stack, kStackBytes);
#endif
  (void)l;
}

/// Scheduler side: runs `t` until it suspends or returns.
void resume(Launch &l, Thread &t) {
  l.current = &t;
  void *fakeStack = nullptr;
  startSwitch(&fakeStack, t.stack, kStackBytes);
  swapcontext(&l.scheduler, &t.context);
  finishSwitch(fakeStack, nullptr, nullptr);
}

/// Thread side: waits for the scheduler to release `wait`.
void suspend(Wait wait) {
  Launch &l = *active;
  Thread &t = *l.current;
  t.wait = wait;
  startSwitch(&t.fakeStack, l.schedulerStack, l.schedulerStackBytes);
  swapcontext(&t.context, &l.scheduler);
  finishSwitch(t.fakeStack, &l.schedulerStack, &l.schedulerStackBytes);
}

void threadMain() {
  Launch &l = *active;
  finishSwitch(nullptr, &l.schedulerStack, &l.schedulerStackBytes);
  l.kernel->launch(l.params);
  l.current->wait = Wait::Done;
  // The fiber ends: its fake stack goes with it (uc_link resumes the
  // scheduler).
  startSwitch(nullptr, l.schedulerStack, l.schedulerStackBytes);
}

void fail(Launch &l, std::string message) {
  if (l.error.empty())
    l.error = std::move(message);
}

int64_t sourceLane(int64_t lane, int32_t offset, int32_t mode) {
  switch (mode) {
  case abi::kXor:
    return lane ^ offset;
  case abi::kUp:
    return lane - offset;
  case abi::kDown:
    return lane + offset;
  case abi::kIdx:
    return offset;
  default:
    return -1;
  }
}

/// Releases every warp whose lanes all wait at the same warp operation.
bool releaseWarps(Launch &l) {
  bool released = false;
  const int64_t n = l.threads.size();
  for (int64_t base = 0; base < n; base += kWarpSize) {
    const int64_t end = std::min(n, base + kWarpSize);
    const Wait wait = l.threads[base].wait;
    if (wait != Wait::SyncWarp && wait != Wait::Shuffle)
      continue;
    if (!std::all_of(l.threads.begin() + base, l.threads.begin() + end,
                     [&](const Thread &t) { return t.wait == wait; }))
      continue;
    const std::string where = "warp " + std::to_string(base / kWarpSize);
    if (wait == Wait::SyncWarp) {
      ++l.warpSyncs[base / kWarpSize];
      for (int64_t i = base; i < end; ++i)
        if (l.threads[i].mask != -1)
          fail(l, where + ": bar.warp.sync with a partial mask; the "
                          "emulator synchronises whole warps only");
    } else {
      const Thread &first = l.threads[base];
      if (end - base != kWarpSize || first.width != kWarpSize)
        fail(l, where + ": a shuffle of width " + std::to_string(first.width) +
                    " over " + std::to_string(end - base) +
                    " lanes; the emulator shuffles whole warps only");
      for (int64_t i = base; i < end; ++i)
        if (l.threads[i].mode != first.mode ||
            l.threads[i].width != first.width)
          fail(l, where + ": its lanes wait at different shuffles");
      int32_t results[kWarpSize];
      for (int64_t i = base; i < end; ++i) {
        const Thread &t = l.threads[i];
        int64_t src = sourceLane(t.lane, t.offset, t.mode);
        // Out of range, a lane reads its own value (shfl.sync).
        results[i - base] = src >= 0 && src < end - base
                                ? l.threads[base + src].value
                                : t.value;
      }
      for (int64_t i = base; i < end; ++i)
        l.threads[i].result = results[i - base];
    }
    for (int64_t i = base; i < end; ++i)
      l.threads[i].wait = Wait::None;
    released = true;
  }
  return released;
}

/// Releases the block once every thread that has not returned waits at
/// the barrier.
bool releaseBarrier(Launch &l) {
  bool any = false;
  for (const Thread &t : l.threads) {
    if (t.wait == Wait::Barrier)
      any = true;
    else if (t.wait != Wait::Done)
      return false;
  }
  if (!any)
    return false;
  ++l.barriers;
  for (Thread &t : l.threads)
    if (t.wait == Wait::Barrier)
      t.wait = Wait::None;
  return true;
}

std::string describeHang(const Launch &l) {
  int64_t barrier = 0, warp = 0, done = 0;
  for (const Thread &t : l.threads) {
    barrier += t.wait == Wait::Barrier;
    warp += t.wait == Wait::SyncWarp || t.wait == Wait::Shuffle;
    done += t.wait == Wait::Done;
  }
  return "block (" + std::to_string(l.blockId[0]) + ", " +
         std::to_string(l.blockId[1]) + ", " + std::to_string(l.blockId[2]) +
         ") would hang: " + std::to_string(barrier) +
         " threads wait at a barrier, " + std::to_string(warp) +
         " at a warp operation not every lane of their warp reaches, " +
         std::to_string(done) + " have returned";
}

std::string dims(const int64_t d[3]) {
  return "(" + std::to_string(d[0]) + ", " + std::to_string(d[1]) + ", " +
         std::to_string(d[2]) + ")";
}

/// The (x, y, z) of linear index i, x fastest, in a grid or block of
/// `extent`.
void unflatten(int64_t i, const int64_t extent[3], int64_t out[3]) {
  out[0] = i % extent[0];
  out[1] = (i / extent[0]) % extent[1];
  out[2] = i / (extent[0] * extent[1]);
}

/// The running block's linear index, x fastest.
int64_t linearBlock(const Launch &l) {
  return l.blockId[0] + l.grid[0] * (l.blockId[1] + l.grid[1] * l.blockId[2]);
}

/// Runs the block `l.blockId` to its end; false on an error or hang.
bool runBlock(Launch &l) {
  // NaN as f32, -1 as an integer.
  for (const abi::SharedBuffer *s = l.kernel->shared; s && s->data; ++s)
    std::memset(s->data, 0xff, s->bytes);
  ++l.blockSerial;
  l.counted = false;
  l.barriers = 0;
  l.warpSyncs.assign((l.threads.size() + kWarpSize - 1) / kWarpSize, 0);
  std::vector<size_t> order(l.threads.size());
  std::iota(order.begin(), order.end(), 0);
  for (size_t i = 0; i < l.threads.size(); ++i) {
    Thread &t = l.threads[i];
    t = Thread();
    t.stack = stacks[i].get();
    unflatten(static_cast<int64_t>(i), l.block, t.id);
    t.index = static_cast<int32_t>(i);
    t.lane = i % kWarpSize;
    getcontext(&t.context);
    t.context.uc_stack.ss_sp = t.stack;
    t.context.uc_stack.ss_size = kStackBytes;
    t.context.uc_link = &l.scheduler;
    makecontext(&t.context, threadMain, 0);
  }
  for (;;) {
    std::shuffle(order.begin(), order.end(), l.order);
    for (size_t i : order)
      if (l.threads[i].wait == Wait::None && l.error.empty())
        resume(l, l.threads[i]);
    if (!l.error.empty())
      return false;
    if (releaseWarps(l) || releaseBarrier(l))
      continue;
    if (std::all_of(l.threads.begin(), l.threads.end(),
                    [](const Thread &t) { return t.wait == Wait::Done; }))
      return true;
    fail(l, describeHang(l));
    return false;
  }
}

/// Fails the launch at the current thread's memory access; the caller
/// then suspends the thread for good (after these strings are gone: an
/// abandoned fiber destroys nothing). Out of line: the access check is the
/// emulator's hottest path.
[[gnu::noinline]] void accessFault(Launch &l, const char *access,
                                   const std::string &why) {
  const Thread &t = *l.current;
  fail(l, "thread " + dims(t.id) + " of block " + dims(l.blockId) + ": " +
              access + ": " + why);
}

[[gnu::noinline]] void raceFault(Launch &l, const char *access, bool write,
                                 int64_t word, size_t buffer,
                                 const WordAccess &earlier, const char *did) {
  accessFault(l, access,
              std::string(write ? "writes" : "reads") + " word " +
                  std::to_string(word) + " of shared buffer " +
                  std::to_string(buffer) + ", which thread " +
                  dims(l.threads[earlier.thread].id) + " " + did + " (" +
                  earlier.what +
                  ") with no barrier or warp sync between them: a race");
}

[[gnu::noinline]] void handoverFault(Launch &l, const char *access, bool write,
                                     const GlobalWrite &earlier) {
  int64_t block[3], thread[3];
  unflatten(earlier.block, l.grid, block);
  unflatten(earlier.thread, l.block, thread);
  accessFault(
      l, access,
      std::string(write ? "writes" : "reads") + " what thread " + dims(thread) +
          " of block " + dims(block) + " wrote (" + earlier.what + ") " +
          (earlier.fenced ? "without a fence of its own after counting "
                            "its block done (an atomic)"
                          : "and did not fence") +
          ": blocks run in no order, so nothing made that write visible");
}

} // namespace

std::string swan::test::emulateLaunch(const abi::EmulatedKernel &kernel,
                                      const unsigned grid[3],
                                      const unsigned block[3], void **params) {
  static std::mutex mutex;
  std::lock_guard<std::mutex> lock(mutex);
  // Each launch its own order, the same in every run of a test.
  static uint32_t launches = 0;
  Launch l;
  l.order.seed(++launches);
  l.kernel = &kernel;
  l.params = params;
  for (int d = 0; d < 3; ++d) {
    l.grid[d] = grid[d];
    l.block[d] = block[d];
  }
  const std::string name = kernel.name;
  const int64_t known[3] = {kernel.knownBlockSize[0], kernel.knownBlockSize[1],
                            kernel.knownBlockSize[2]};
  if (known[0] != 0 && !std::equal(known, known + 3, l.block))
    return name + ": launched with block " + dims(l.block) +
           ", compiled for known_block_size " + dims(known);
  const int64_t threads = l.block[0] * l.block[1] * l.block[2];
  if (threads < 1 || threads > kMaxThreads)
    return name + ": a block of " + std::to_string(threads) + " threads";
  if (l.grid[0] * l.grid[1] * l.grid[2] < 1)
    return name + ": an empty grid " + dims(l.grid);
  while (stacks.size() < static_cast<size_t>(threads))
    stacks.push_back(std::make_unique<char[]>(kStackBytes));
  l.threads.resize(threads);
  for (const abi::SharedBuffer *s = kernel.shared; s && s->data; ++s)
    l.shadow.emplace_back(s->bytes / 4);

  // Blocks in a random order too: CUDA promises none, and a kernel whose
  // last block to finish does extra work must not count on which it is.
  std::vector<int64_t> blocks(l.grid[0] * l.grid[1] * l.grid[2]);
  std::iota(blocks.begin(), blocks.end(), 0);
  std::shuffle(blocks.begin(), blocks.end(), l.order);
  active = &l;
  for (int64_t b : blocks) {
    unflatten(b, l.grid, l.blockId);
    if (!runBlock(l)) {
      abandon(l);
      active = nullptr;
      return name + ": " + l.error;
    }
  }
  active = nullptr;
  return "";
}

// The kernels' calls into the emulator (EmulatorABI.h).
extern "C" {

int64_t swan_emu_thread_id(int32_t d) { return active->current->id[d]; }
int64_t swan_emu_block_id(int32_t d) { return active->blockId[d]; }
int64_t swan_emu_block_dim(int32_t d) { return active->block[d]; }
int64_t swan_emu_grid_dim(int32_t d) { return active->grid[d]; }

void swan_emu_barrier() { suspend(Wait::Barrier); }

void swan_emu_syncwarp(int32_t mask) {
  active->current->mask = mask;
  suspend(Wait::SyncWarp);
}

int32_t swan_emu_shuffle(int32_t value, int32_t offset, int32_t width,
                         int32_t mode) {
  Thread &t = *active->current;
  t.value = value;
  t.offset = offset;
  t.width = width;
  t.mode = mode;
  suspend(Wait::Shuffle);
  return t.result;
}

void swan_emu_out_of_bounds(const char *access, int32_t dimension,
                            int64_t index, int64_t size) {
  accessFault(*active, access,
              "index " + std::to_string(index) + " of dimension " +
                  std::to_string(dimension) + " is outside [0, " +
                  std::to_string(size) + ")");
  suspend(Wait::Faulted);
}

void swan_emu_shared_access(int64_t address, int64_t words, int32_t write,
                            const char *access) {
  Launch &l = *active;
  const Thread &t = *l.current;
  size_t buffer = 0;
  int64_t begin = 0;
  const abi::SharedBuffer *s = l.kernel->shared;
  for (; s && s->data; ++s, ++buffer) {
    begin = reinterpret_cast<int64_t>(s->data);
    if (address >= begin && address + 4 * words <= begin + s->bytes)
      break;
  }
  if (!s || !s->data) {
    accessFault(l, access, "outside every shared buffer");
    suspend(Wait::Faulted);
  }
  const uint32_t warpSyncs = l.warpSyncs[t.index / kWarpSize];
  // Whether `a` happened before this access: the same thread, a barrier
  // since, or a sync of the same warp since.
  auto ordered = [&](const WordAccess &a) {
    return a.thread < 0 || a.thread == t.index || l.barriers > a.barriers ||
           (a.thread / kWarpSize == t.index / kWarpSize &&
            warpSyncs > a.warpSyncs);
  };
  const WordAccess now{t.index, l.barriers, warpSyncs, access};
  const int64_t first = (address - begin) / 4;
  for (int64_t w = first; w < first + words; ++w) {
    SharedWord &word = l.shadow[buffer][w];
    if (word.block != l.blockSerial)
      word = SharedWord{l.blockSerial, {}, {}};
    if (!ordered(word.write)) {
      raceFault(l, access, write, w, buffer, word.write, "wrote");
      suspend(Wait::Faulted);
    }
    if (write) {
      for (const WordAccess &read : word.reads)
        if (!ordered(read)) {
          raceFault(l, access, write, w, buffer, read, "read");
          suspend(Wait::Faulted);
        }
      word.write = now;
      word.reads[0] = word.reads[1] = WordAccess();
    } else if (ordered(word.reads[0])) {
      word.reads[0] = now;
    } else if (ordered(word.reads[1])) {
      word.reads[1] = now;
    }
    // Else a third unordered reader: the word keeps the first two.
  }
}

void swan_emu_global_access(int64_t address, int64_t elements,
                            int32_t elementBytes, int32_t write,
                            const char *access) {
  Launch &l = *active;
  Thread &t = *l.current;
  const int64_t block = linearBlock(l);
  for (int64_t e = 0; e < elements; ++e) {
    const int64_t at = address + e * elementBytes;
    auto it = l.globalWrites.find(at);
    if (it != l.globalWrites.end() && it->second.block != block &&
        !(it->second.fenced && t.acquired)) {
      handoverFault(l, access, write, it->second);
      suspend(Wait::Faulted);
    }
    if (write) {
      l.globalWrites[at] = GlobalWrite{block, t.index, false, access};
      t.unfenced.push_back(at);
    }
  }
}

void swan_emu_global_atomic() { active->counted = true; }

void swan_emu_fence() {
  Launch &l = *active;
  Thread &t = *l.current;
  const int64_t block = linearBlock(l);
  for (int64_t at : t.unfenced) {
    GlobalWrite &w = l.globalWrites[at];
    if (w.block == block && w.thread == t.index)
      w.fenced = true;
  }
  t.unfenced.clear();
  t.acquired |= l.counted;
}

int32_t swan_emu_shuffle_valid(int32_t offset, int32_t width, int32_t mode) {
  int64_t src = sourceLane(active->current->lane, offset, mode);
  return src >= 0 && src < width;
}

} // extern "C"
