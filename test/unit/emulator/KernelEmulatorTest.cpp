//===- KernelEmulatorTest.cpp - the kernel emulator's own semantics -------===//
//
// Kernels written by hand against the emulator's entry points, as the
// host-lowered kernels call them: what a launch computes (ids, barriers,
// shuffles) and what it refuses (a hang, a mismatched block size, an
// access out of bounds).
//
//===----------------------------------------------------------------------===//

#include "KernelEmulator.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <vector>

namespace emu = swan::emulator_abi;

extern "C" {
int64_t swan_emu_thread_id(int32_t);
int64_t swan_emu_block_id(int32_t);
int64_t swan_emu_block_dim(int32_t);
int64_t swan_emu_grid_dim(int32_t);
void swan_emu_barrier();
void swan_emu_syncwarp(int32_t);
int32_t swan_emu_shuffle(int32_t, int32_t, int32_t, int32_t);
int32_t swan_emu_shuffle_valid(int32_t, int32_t, int32_t);
void swan_emu_out_of_bounds(const char *, int32_t, int64_t, int64_t);
void swan_emu_shared_access(int64_t, int64_t, int32_t, const char *);
void swan_emu_global_access(int64_t, int64_t, int32_t, int32_t, const char *);
void swan_emu_global_atomic();
void swan_emu_fence();
}

namespace {

/// The shared memory of the kernels below.
int32_t shared[1024];
const emu::SharedBuffer sharedBuffers[] = {{shared, sizeof(shared)},
                                           {nullptr, 0}};

std::string launch(void (*kernel)(void **), std::vector<int32_t> &out,
                   unsigned blocks, unsigned threads,
                   unsigned knownThreads = 0) {
  emu::EmulatedKernel k{"test",
                        kernel,
                        {static_cast<int32_t>(knownThreads),
                         knownThreads ? 1 : 0, knownThreads ? 1 : 0},
                        sharedBuffers};
  int32_t *data = out.data();
  void *params[] = {&data};
  const unsigned grid[3] = {blocks, 1, 1}, block[3] = {threads, 1, 1};
  return swan::test::emulateLaunch(k, grid, block, params);
}

int32_t *output(void **params) { return *static_cast<int32_t **>(params[0]); }

int64_t globalThread() {
  return swan_emu_block_id(0) * swan_emu_block_dim(0) + swan_emu_thread_id(0);
}

/// Each thread writes its id to shared memory, and after the barrier reads
/// its neighbour's: only a barrier that waits for every thread gets them.
void neighbour(void **params) {
  const int64_t t = swan_emu_thread_id(0), n = swan_emu_block_dim(0);
  shared[t] = static_cast<int32_t>(swan_emu_block_id(0) * 1000 + t);
  swan_emu_barrier();
  output(params)[globalThread()] = shared[(t + 1) % n];
}

TEST(KernelEmulatorTest, ABarrierOrdersEveryThreadOfTheBlock) {
  std::vector<int32_t> out(3 * 96, -1);
  ASSERT_EQ(launch(neighbour, out, 3, 96), "");
  for (int b = 0; b < 3; ++b)
    for (int t = 0; t < 96; ++t)
      EXPECT_EQ(out[b * 96 + t], b * 1000 + (t + 1) % 96);
}

/// Reads shared memory first: what the previous block left is not there.
void readFirst(void **params) {
  const int64_t t = swan_emu_thread_id(0);
  output(params)[globalThread()] = shared[t];
  swan_emu_barrier();
  shared[t] = 7;
}

TEST(KernelEmulatorTest, SharedMemoryStartsEachBlockPoisoned) {
  std::vector<int32_t> out(2 * 64, 0);
  ASSERT_EQ(launch(readFirst, out, 2, 64), "");
  for (int32_t v : out)
    EXPECT_EQ(v, -1);
}

/// Thread 0 writes, the others read, with no barrier between: only a
/// schedule that always ran thread 0 first would read its value everywhere.
void unordered(void **params) {
  const int64_t t = swan_emu_thread_id(0);
  if (t == 0)
    shared[0] = 42;
  else
    output(params)[t] = shared[0];
  swan_emu_barrier();
}

TEST(KernelEmulatorTest, ThreadsRunInNoFixedOrder) {
  std::vector<int32_t> out(128, 0);
  ASSERT_EQ(launch(unordered, out, 1, 128), "");
  EXPECT_NE(std::count(out.begin() + 1, out.end(), 42), 127);
  EXPECT_GT(std::count(out.begin() + 1, out.end(), 42), 0);
}

template <int32_t Mode, int32_t Offset> void shuffle(void **params) {
  const int32_t lane = static_cast<int32_t>(swan_emu_thread_id(0) % 32);
  int32_t *out = output(params);
  out[2 * globalThread()] = swan_emu_shuffle(100 + lane, Offset, 32, Mode);
  out[2 * globalThread() + 1] = swan_emu_shuffle_valid(Offset, 32, Mode);
}

TEST(KernelEmulatorTest, ShufflesFollowShflSync) {
  struct Case {
    void (*kernel)(void **);
    int32_t (*source)(int32_t lane); // -1: out of range
  };
  const Case cases[] = {
      {shuffle<emu::kXor, 5>, [](int32_t l) { return l ^ 5; }},
      {shuffle<emu::kDown, 3>,
       [](int32_t l) { return l + 3 < 32 ? l + 3 : -1; }},
      {shuffle<emu::kUp, 2>, [](int32_t l) { return l >= 2 ? l - 2 : -1; }},
      {shuffle<emu::kIdx, 7>, [](int32_t) { return 7; }},
  };
  for (const Case &c : cases) {
    std::vector<int32_t> out(2 * 64, -1);
    ASSERT_EQ(launch(c.kernel, out, 1, 64), "");
    for (int32_t t = 0; t < 64; ++t) {
      const int32_t lane = t % 32, src = c.source(lane);
      // Out of range, a lane keeps its own value and learns it is invalid.
      EXPECT_EQ(out[2 * t], 100 + (src < 0 ? lane : src)) << "thread " << t;
      EXPECT_EQ(out[2 * t + 1], src >= 0) << "thread " << t;
    }
  }
}

/// Half of each warp waits at the barrier, the other half at a shuffle.
void barrierAgainstShuffle(void **params) {
  if (swan_emu_thread_id(0) % 32 < 16)
    swan_emu_barrier();
  else
    output(params)[0] = swan_emu_shuffle(1, 1, 32, emu::kXor);
}

void halfAWarpSyncs(void **) {
  if (swan_emu_thread_id(0) % 32 < 16)
    swan_emu_syncwarp(-1);
}

void shuffleThenSync(void **) {
  if (swan_emu_thread_id(0) % 2)
    swan_emu_shuffle(0, 1, 32, emu::kXor);
  else
    swan_emu_syncwarp(-1);
}

TEST(KernelEmulatorTest, WhatWouldHangOnAGpuIsReported) {
  std::vector<int32_t> out(64, 0);
  std::string error = launch(barrierAgainstShuffle, out, 1, 64);
  EXPECT_NE(error.find("block (0, 0, 0) would hang: 32 threads wait at a "
                       "barrier, 32 at a warp operation"),
            std::string::npos)
      << error;
  error = launch(halfAWarpSyncs, out, 2, 64);
  EXPECT_NE(error.find("would hang"), std::string::npos) << error;
  EXPECT_NE(error.find("32 have returned"), std::string::npos) << error;
  error = launch(shuffleThenSync, out, 1, 32);
  EXPECT_NE(error.find("would hang"), std::string::npos) << error;
}

void narrowShuffle(void **) { swan_emu_shuffle(0, 1, 16, emu::kXor); }

TEST(KernelEmulatorTest, WhatItCannotEmulateIsRefused) {
  std::vector<int32_t> out(64, 0);
  std::string error = launch(narrowShuffle, out, 1, 32);
  EXPECT_NE(error.find("a shuffle of width 16"), std::string::npos) << error;
  error = launch(neighbour, out, 1, 64, /*knownThreads=*/128);
  EXPECT_EQ(error, "test: launched with block (64, 1, 1), compiled for "
                   "known_block_size (128, 1, 1)");
  error = launch(neighbour, out, 1, 2048);
  EXPECT_EQ(error, "test: a block of 2048 threads");
}

/// Each thread stores 1 at its global id, but thread 13 of block 1 past the
/// end of the 64 elements, guarded as swan-gpu-kernels-to-host guards every
/// access; the other threads wait at a barrier meanwhile.
void storePastTheEnd(void **params) {
  const int64_t t = globalThread(), size = 64;
  const int64_t at = t == 45 ? 100 : t;
  if (at >= size)
    swan_emu_out_of_bounds("memref.store of memref<64xi32> (argument 0)", 0, at,
                           size);
  output(params)[at] = 1;
  swan_emu_barrier();
}

TEST(KernelEmulatorTest, AnAccessOutOfBoundsFailsTheLaunchBeforeItRuns) {
  std::vector<int32_t> out(128, 0);
  std::string error = launch(storePastTheEnd, out, 2, 32);
  EXPECT_EQ(error, "test: thread (13, 0, 0) of block (1, 0, 0): memref.store "
                   "of memref<64xi32> (argument 0): index 100 of dimension 0 "
                   "is outside [0, 64)");
  // Block 0 ran whole or not at all, as the random block order had it.
  const long stored = std::count(out.begin(), out.begin() + 32, 1);
  EXPECT_TRUE(stored == 0 || stored == 32) << stored;
  // The faulting thread stored nothing, in bounds or out.
  EXPECT_EQ(out[100], 0);
  EXPECT_EQ(out[45], 0);
}

/// Thread 0 of each block writes the block's place in the order blocks
/// ran, counted in the last element.
void recordBlockOrder(void **params) {
  int32_t *out = output(params);
  if (swan_emu_thread_id(0) == 0)
    out[swan_emu_block_id(0)] = out[64]++;
}

// CUDA runs blocks in no promised order; neither does the emulator, so a
// kernel whose last block to finish merges must find out which it is.
TEST(KernelEmulatorTest, BlocksRunInARandomOrder) {
  std::vector<int32_t> out(65, 0);
  ASSERT_EQ(launch(recordBlockOrder, out, 64, 32), "");
  std::vector<int32_t> places(out.begin(), out.begin() + 64);
  std::vector<int32_t> sorted = places;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int32_t> identity(64);
  std::iota(identity.begin(), identity.end(), 0);
  EXPECT_EQ(sorted, identity) << "every block ran once";
  EXPECT_NE(places, identity) << "blocks ran in launch order";
}

/// The steps of a last-block-merges kernel that may be left out.
struct MergeSteps {
  bool releaseFence = true, count = true, acquireFence = true;
};
MergeSteps mergeSteps;

/// Each block of two (one thread each) writes out[block], fences, counts
/// itself in out[2] with an atomic, and the block that counts second fences
/// again and reads out[1 - block] into out[3 + block]: the pattern of the
/// decode kernel's merge, as swan-gpu-kernels-to-host reports its global
/// accesses, with `mergeSteps`' steps left out.
void lastBlockReads(void **params) {
  int32_t *out = output(params);
  const int64_t block = swan_emu_block_id(0);
  auto access = [&](int64_t i, bool write) {
    swan_emu_global_access(reinterpret_cast<int64_t>(&out[i]), 1, 4, write,
                           write ? "memref.store (argument 0)"
                                 : "memref.load (argument 0)");
  };
  access(block, true);
  out[block] = static_cast<int32_t>(10 + block);
  if (mergeSteps.releaseFence)
    swan_emu_fence();
  int32_t before = 1; // as if the other block had counted first
  if (mergeSteps.count) {
    swan_emu_global_atomic();
    before = out[2]++;
  }
  if (before != 1)
    return;
  if (mergeSteps.acquireFence)
    swan_emu_fence();
  access(1 - block, false);
  out[3 + block] = out[1 - block];
}

// Blocks run in no order and nothing orders their memory but a fence: a
// block reading what another wrote in the same launch must find it handed
// over (fence, atomic, fence), or the launch fails naming both accesses.
TEST(KernelEmulatorTest, GlobalWritesPassBetweenBlocksOnlyThroughAHandover) {
  std::vector<int32_t> out(5, 0);
  mergeSteps = {};
  ASSERT_EQ(launch(lastBlockReads, out, 2, 1), "");
  EXPECT_EQ(out[2], 2);
  EXPECT_TRUE((out[3] == 11 && out[4] == 0) || (out[3] == 0 && out[4] == 10))
      << out[3] << " " << out[4];

  const MergeSteps broken[] = {
      {false, true, true}, {true, false, true}, {true, true, false}};
  for (const MergeSteps &h : broken) {
    SCOPED_TRACE(testing::Message()
                 << h.releaseFence << h.count << h.acquireFence);
    std::fill(out.begin(), out.end(), 0);
    mergeSteps = h;
    std::string error = launch(lastBlockReads, out, 2, 1);
    EXPECT_NE(error.find(": memref.load (argument 0): reads what thread "
                         "(0, 0, 0) of block ("),
              std::string::npos)
        << error;
    EXPECT_NE(error.find("wrote (memref.store (argument 0))"),
              std::string::npos)
        << error;
  }
  mergeSteps = {};
}

/// How thread `from` hands a word of shared memory to thread `to`, as the
/// host-lowered kernels report their shared accesses.
enum class Handover { None, Barrier, SyncWarp, Shuffle };
struct HandoverCase {
  int64_t from, to;
  Handover between;
  bool reads; // `to` reads the word (else it overwrites it)
};
HandoverCase handover;

void report(int64_t word, bool write) {
  swan_emu_shared_access(reinterpret_cast<int64_t>(&shared[word]), 1, write,
                         write ? "store" : "load");
}

void handOver(void **) {
  const int64_t t = swan_emu_thread_id(0);
  if (t == handover.from) {
    report(0, true);
    shared[0] = 42;
  }
  // Every thread of the block takes part in the synchronisation.
  if (handover.between == Handover::Barrier)
    swan_emu_barrier();
  if (handover.between == Handover::SyncWarp)
    swan_emu_syncwarp(-1);
  if (handover.between == Handover::Shuffle)
    swan_emu_shuffle(0, 1, 32, emu::kXor);
  if (t == handover.to) {
    report(0, !handover.reads);
    if (!handover.reads)
      shared[0] = 7;
  }
}

TEST(KernelEmulatorTest, SharedAccessesThatNoSyncOrdersAreARace) {
  std::vector<int32_t> out(64, 0);
  // A barrier orders a block, a warp sync a warp; a shuffle orders no
  // memory, and different warps are not ordered by a warp sync.
  const struct {
    HandoverCase c;
    bool race;
  } cases[] = {
      {{0, 40, Handover::Barrier, true}, false},
      {{0, 40, Handover::Barrier, false}, false},
      {{3, 5, Handover::SyncWarp, true}, false},
      {{3, 5, Handover::SyncWarp, false}, false},
      {{0, 40, Handover::SyncWarp, true}, true},
      {{3, 5, Handover::Shuffle, true}, true},
      {{3, 5, Handover::None, false}, true},
      {{3, 3, Handover::None, false}, false},
  };
  for (const auto &[c, race] : cases) {
    SCOPED_TRACE("from " + std::to_string(c.from) + " to " +
                 std::to_string(c.to) + ", sync " +
                 std::to_string(static_cast<int>(c.between)));
    handover = c;
    std::string error = launch(handOver, out, 2, 64);
    if (!race) {
      EXPECT_EQ(error, "");
      continue;
    }
    // Which of the two threads finds it depends on the order they ran in.
    EXPECT_NE(error.find("with no barrier or warp sync between them: a race"),
              std::string::npos)
        << error;
    EXPECT_NE(error.find("thread (" + std::to_string(c.from) + ", 0, 0)"),
              std::string::npos)
        << error;
    EXPECT_NE(error.find("thread (" + std::to_string(c.to) + ", 0, 0)"),
              std::string::npos)
        << error;
    EXPECT_NE(error.find("word 0 of shared buffer 0"), std::string::npos)
        << error;
  }
}

/// Every thread reads word 0; then thread `lateWriter` (if any) writes it
/// with no barrier in between.
int64_t lateWriter = -1;
void readsThenWrite(void **) {
  report(0, false);
  if (swan_emu_thread_id(0) == lateWriter)
    report(0, true);
}

TEST(KernelEmulatorTest, ReadsAloneNeverRace) {
  std::vector<int32_t> out(64, 0);
  lateWriter = -1;
  EXPECT_EQ(launch(readsThenWrite, out, 2, 64), "");
  lateWriter = 33;
  // Thread 33 finds it at its write, or a reader after it at its read.
  std::string error = launch(readsThenWrite, out, 2, 64);
  EXPECT_NE(error.find("thread (33, 0, 0)"), std::string::npos) << error;
  EXPECT_NE(error.find("with no barrier or warp sync between them: a race"),
            std::string::npos)
      << error;
}

TEST(KernelEmulatorTest, AFailedLaunchLeavesTheNextOneWhole) {
  std::vector<int32_t> out(64, 0);
  ASSERT_NE(launch(barrierAgainstShuffle, out, 1, 64), "");
  std::vector<int32_t> again(2 * 96, -1);
  ASSERT_EQ(launch(neighbour, again, 2, 96), "");
  EXPECT_EQ(again[95], 0);
  EXPECT_EQ(again[96], 1001);
  std::vector<int32_t> bounds(128, 0);
  ASSERT_NE(launch(storePastTheEnd, bounds, 2, 32), "");
  ASSERT_EQ(launch(neighbour, again, 2, 96), "");
  EXPECT_EQ(again[190], 1095);
}

} // namespace
