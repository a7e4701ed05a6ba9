// The syntax tree of a parsed template: expressions and statements as Jinja's parser builds
// them (jinja2.nodes), evaluated directly by the interpreter.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "value.h"

namespace tk::jinja::detail {

enum class ExprKind {
  kConst, kName, kTuple, kList, kDict, kGetAttr, kGetItem, kSlice, kCall, kFilter, kTest,
  kNot, kNeg, kPos, kBinary, kAnd, kOr, kConcat, kCompare, kCondExpr, kNsRef,
};

enum class BinaryOp { kAdd, kSub, kMul, kDiv, kFloorDiv, kMod, kPow };
enum class CompareOp { kEq, kNe, kLt, kLe, kGt, kGe, kIn, kNotIn };

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Keyword {
  std::string name;
  ExprPtr value;
};

// Arguments of a call, filter or test: f(a, b, k=v, *args, **kwargs).
struct ArgList {
  std::vector<ExprPtr> args;
  std::vector<Keyword> kwargs;
  ExprPtr dyn_args;
  ExprPtr dyn_kwargs;
};

struct Expr {
  ExprKind kind;
  int line = 0;
  Value value;                 // kConst
  std::string name;            // kName, kGetAttr attribute, kFilter/kTest name, kNsRef attribute
  std::vector<ExprPtr> items;  // kTuple/kList items; kDict alternating key, value; kConcat parts
  ExprPtr a, b, c;             // operands: object/index, left/right, test/then/else, slice parts
  BinaryOp op = BinaryOp::kAdd;
  std::vector<std::pair<CompareOp, ExprPtr>> comparisons;  // kCompare: a op1 x1 op2 x2 ...
  ArgList call;                // kCall, kFilter, kTest
  bool in_soft_frame = false;  // kFilter/kTest: an unknown name fails only when reached
  Expr(ExprKind k, int l) : kind(k), line(l) {}
};

enum class StmtKind {
  kOutput, kIf, kFor, kSet, kSetBlock, kMacro, kCallBlock, kFilterBlock, kWith, kScope, kBreak, kContinue,
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

struct MacroSignature {
  std::vector<std::string> params;
  std::vector<ExprPtr> defaults;  // for the last defaults.size() params
};

struct Stmt {
  StmtKind kind;
  int line = 0;
  // kOutput: literal text pieces (`text` set, `expr` null) and expressions, in order.
  struct Piece {
    std::string text;
    ExprPtr expr;
  };
  std::vector<Piece> pieces;
  ExprPtr target;                // kFor/kSet/kSetBlock target
  ExprPtr expr;                  // kIf test, kFor iterable, kSet value, kCallBlock call, kFilterBlock filter
  ExprPtr filter_test;           // kFor `if` clause; kSetBlock filter
  Body body, else_body;          // kIf: else_body holds the elif chain as a nested kIf
  bool recursive = false;        // kFor
  std::string name;              // kMacro
  MacroSignature signature;      // kMacro, kCallBlock
  std::vector<ExprPtr> targets, values;  // kWith
  bool uses_varargs = false, uses_kwargs = false, uses_caller = false;  // kMacro/kCallBlock body reads these
  Stmt(StmtKind k, int l) : kind(k), line(l) {}
};

struct Program {
  Body body;
  std::string source;
};

}  // namespace tk::jinja::detail
