// queue_demo: producer threads fill a BlobsQueue held in a workspace, consumer threads drain
// it, and shutdown is clean: close the queue, then join (spec queues.md §8). Prints how many
// records each side moved and the queue's stats.
// Usage: queue_demo [producers] [consumers] [records per producer]
#include "caffe2rs.h"

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

bool check(int32_t status, const char* what) {
  if (status == C2RS_OK) return true;
  std::fprintf(stderr, "%s failed (%d): %s\n", what, status, c2rs_last_error_message());
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  const int producers = argc > 1 ? std::atoi(argv[1]) : 3;
  const int consumers = argc > 2 ? std::atoi(argv[2]) : 2;
  const int64_t per_producer = argc > 3 ? std::atoll(argv[3]) : 1000;
  if (producers < 1 || consumers < 1 || per_producer < 1) {
    std::fprintf(stderr, "usage: queue_demo [producers] [consumers] [records per producer]\n");
    return 2;
  }

  c2rs_workspace* ws = nullptr;
  c2rs_blobs_queue* queue = nullptr;
  if (!check(c2rs_workspace_new(nullptr, &ws), "c2rs_workspace_new")) return 1;
  // A queue of 4 records, 2 blobs each (an id and a payload row), held in blob "demo_queue".
  if (!check(c2rs_blobs_queue_create(ws, "demo_queue", 4, 2, false, &queue),
             "c2rs_blobs_queue_create"))
    return 1;

  std::atomic<int64_t> consumed{0}, checksum{0};
  std::vector<std::thread> consumer_threads;
  for (int c = 0; c < consumers; ++c) {
    consumer_threads.emplace_back([&] {
      c2rs_tensor* record[2] = {nullptr, nullptr};
      // Blocks until a record arrives; C2RS_CLOSED once the queue is closed and drained.
      while (c2rs_blobs_queue_dequeue(queue, record, 2) == C2RS_OK) {
        const void* id = nullptr;
        if (c2rs_tensor_data(record[0], &id) == C2RS_OK) {
          int64_t v = 0;
          std::memcpy(&v, id, sizeof v);
          checksum.fetch_add(v);
        }
        c2rs_tensor_free(record[0]);
        c2rs_tensor_free(record[1]);
        consumed.fetch_add(1);
      }
    });
  }

  std::atomic<int64_t> produced{0};
  std::vector<std::thread> producer_threads;
  for (int p = 0; p < producers; ++p) {
    producer_threads.emplace_back([&, p] {
      const int64_t one[1] = {1};
      const int64_t row[1] = {16};
      for (int64_t i = 0; i < per_producer; ++i) {
        c2rs_tensor* record[2] = {nullptr, nullptr};
        if (!check(c2rs_tensor_new(C2RS_DTYPE_INT64, one, 1, &record[0]), "c2rs_tensor_new") ||
            !check(c2rs_tensor_new(C2RS_DTYPE_FLOAT, row, 1, &record[1]), "c2rs_tensor_new"))
          return;
        void* id = nullptr;
        const int64_t v = p * per_producer + i;
        if (c2rs_tensor_mutable_data(record[0], &id) == C2RS_OK) std::memcpy(id, &v, sizeof v);
        // Moves both tensors into the queue (no copy); they stay ours only on failure.
        if (c2rs_blobs_queue_enqueue(queue, record, 2) != C2RS_OK) {
          c2rs_tensor_free(record[0]);
          c2rs_tensor_free(record[1]);
          return;
        }
        produced.fetch_add(1);
      }
    });
  }

  for (auto& t : producer_threads) t.join();
  // Clean shutdown: close first (wakes every blocked consumer once the queue is drained), then
  // join. Closing before joining producers is what unblocks a producer stuck on a full queue.
  if (!check(c2rs_blobs_queue_close(queue), "c2rs_blobs_queue_close")) return 1;
  for (auto& t : consumer_threads) t.join();

  const int64_t total = producers * per_producer;
  const int64_t expected_sum = total * (total - 1) / 2;
  std::printf("produced %lld records, consumed %lld, checksum %s\n",
              static_cast<long long>(produced.load()), static_cast<long long>(consumed.load()),
              checksum.load() == expected_sum ? "ok" : "MISMATCH");
  c2rs_buffer* stats = nullptr;
  if (check(c2rs_blobs_queue_stats(queue, &stats), "c2rs_blobs_queue_stats")) {
    std::printf("stats %.*s\n", static_cast<int>(c2rs_buffer_len(stats)),
                reinterpret_cast<const char*>(c2rs_buffer_data(stats)));
    c2rs_buffer_free(stats);
  }
  c2rs_blobs_queue_free(queue);
  c2rs_workspace_free(ws);
  return produced.load() == total && consumed.load() == total && checksum.load() == expected_sum
             ? 0
             : 1;
}
