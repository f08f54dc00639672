// Runs the CUDA kernels' launch geometry (csrc/cuda/row_plan.h) on the host for many shapes and
// checks what every kernel relies on: each element of each row, of each sub-task, is read by
// exactly one thread; inactive threads get an empty range; groups are powers of two that tile
// a block. Prints the group sizes reached and exits 0, or names the first failing case.
#include <cstdio>
#include <set>
#include <vector>

#include "../../csrc/cuda/row_plan.h"

using namespace fastot::cuda;

static std::set<int> groups_seen;

static bool covers(int64_t rows, int64_t d, int vec, int64_t sub_tasks, int sms) {
  const RowPlan p = plan_rows(rows, d, vec, rows * sub_tasks, sms);
  const bool pow2 = p.group >= 1 && p.group <= kThreads && (p.group & (p.group - 1)) == 0;
  if (!pow2 || p.tasks_per_block() * p.group != kThreads || p.chunk_len % vec != 0) {
    std::printf("bad plan: group %d, chunk_len %lld", p.group, static_cast<long long>(p.chunk_len));
    return false;
  }
  groups_seen.insert(p.group);
  const int64_t n_tasks = p.tasks() * sub_tasks;
  const int64_t blocks = p.blocks(n_tasks);
  if (blocks > INT32_MAX) {
    std::printf("%lld blocks", static_cast<long long>(blocks));
    return false;
  }
  std::vector<unsigned char> seen(static_cast<size_t>(rows * sub_tasks * d), 0);
  for (int64_t block = 0; block < blocks; ++block) {
    for (int thread = 0; thread < kThreads; ++thread) {
      const RowTask t = row_task_of(p, n_tasks, sub_tasks, block, thread);
      if (!t.active) {
        if (t.j0 != t.j1) {
          std::printf("inactive thread %d of block %lld has a range", thread, static_cast<long long>(block));
          return false;
        }
        continue;
      }
      const int64_t sub = t.index % sub_tasks;
      if (t.row >= rows || t.j1 > d) {
        std::printf("task %lld out of bounds", static_cast<long long>(t.index));
        return false;
      }
      for (int64_t j = t.begin(vec); j < t.j1; j += p.stride(vec)) {
        for (int i = 0; i < vec; ++i) {
          if (j + i >= t.j1) {
            std::printf("a pack crosses the end of its chunk at %lld", static_cast<long long>(j + i));
            return false;
          }
          ++seen[static_cast<size_t>((t.row * sub_tasks + sub) * d + j + i)];
        }
      }
    }
  }
  for (size_t i = 0; i < seen.size(); ++i) {
    if (seen[i] != 1) {
      std::printf("element %zu read %d times", i, seen[i]);
      return false;
    }
  }
  return true;
}

int main() {
  const int64_t row_counts[] = {1, 2, 3, 16, 64, 1000};
  const int64_t dims[] = {1, 7, 8, 16, 33, 256, 1000, 1024, 4096, 8200, 3 * 64 * 64, 3 * 256 * 256};
  const int vecs[] = {1, 2, 4, 8};
  const int sm_counts[] = {1, 80, 132};
  const int64_t subs[] = {1, 3};
  int cases = 0;
  for (int64_t rows : row_counts)
    for (int64_t d : dims)
      for (int vec : vecs)
        for (int sms : sm_counts)
          for (int64_t sub : subs) {
            if (vec > 1 && d % vec != 0) continue;  // the kernels vectorise only rows of whole packs
            if (rows * sub * d > 20'000'000) continue;
            ++cases;
            if (!covers(rows, d, vec, sub, sms)) {
              std::printf(" (rows %lld, d %lld, vec %d, sub_tasks %lld, sms %d)\n", static_cast<long long>(rows),
                          static_cast<long long>(d), vec, static_cast<long long>(sub), sms);
              return 1;
            }
          }
  std::printf("%d cases; groups:", cases);
  for (int g : groups_seen) std::printf(" %d", g);
  std::printf("\n");
  return 0;
}
