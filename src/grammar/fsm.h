// The compiled automaton: one byte-level FSM per rule, all nodes in one array, joined by call
// edges (a rule reference pushes the callee; a counted repetition X{m,n} pushes a frame that
// counts X's completions). Matching runs a pushdown automaton over these (stepper.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ir.h"

namespace tk::grammar {

struct ByteEdge {
  uint8_t lo = 0, hi = 0;  // inclusive byte range
  int32_t target = 0;
};

struct CallEdge {
  int32_t rule = 0;    // callee (for a repetition: its body rule)
  int32_t target = 0;  // node to continue at after the callee (after the repetition)
  int32_t min = 1, max = 1;  // repetition bounds, max == kUnboundedCount for none
  bool repeat = false;       // a counted repetition: its frame holds the count
};

constexpr int32_t kUnboundedCount = -1;

struct FsmNode {
  int32_t rule = 0;
  uint32_t bytes_begin = 0, bytes_count = 0;  // into Fsm::bytes, sorted by lo
  uint32_t calls_begin = 0, calls_count = 0;  // into Fsm::calls
  bool final = false;
  // final with no edges: calls that return here are tail calls (the caller's frame is dropped).
  bool is_exit() const { return final && bytes_count == 0 && calls_count == 0; }
};

struct Fsm {
  std::vector<FsmNode> nodes;
  std::vector<ByteEdge> bytes;
  std::vector<CallEdge> calls;
  std::vector<int32_t> rule_start;
  std::vector<std::string> rule_names;
  std::vector<uint8_t> rule_is_body;          // anonymous body of counted repetitions only
  std::vector<std::vector<int32_t>> callers;  // per rule: the call edges that call it
  std::vector<uint8_t> rule_nullable;
  int32_t root = 0;
  // Per node: 256 bits, the bytes some edge of the node accepts (a quick reject in the walks).
  std::vector<uint64_t> byte_masks;
  // Per node: for each byte, the edge target, or -1 (DFA nodes only; -2 = several targets).
  std::vector<int32_t> dense;  // [nodes.size() * 256] when built, else empty
  bool has_byte(int32_t node, uint8_t b) const {
    return (byte_masks[node * 4 + (b >> 6)] >> (b & 63)) & 1;
  }
};

// IR -> Fsm. Errors: undefined behaviour in the grammar a user can fix (left recursion, a
// grammar that matches nothing, size limits), each naming the rule.
Result<Fsm> build_fsm(const GrammarIR& ir, const Limits& limits);

}  // namespace tk::grammar
