//===- LegalizeNarrowExpandLoad.cpp - expanding loads for the host --------===//
//
// Two ways to turn vector.expandload into fast host code:
//  - vpexpand: 16-bit floats as an llvm.masked.expandload of their i16 bits,
//    which LLVM lowers to one vpexpandw on AVX-512 VBMI2 hosts (on f16 it
//    would scalarise).
//  - pshufb: on x86 hosts without AVX-512, where LLVM scalarises every
//    expanding load into one branch per lane, each 16 bytes of the result is
//    a 16-byte load and a byte shuffle whose control comes from a table
//    indexed by that part's mask bits (8 bytes for int8 lanes: a table of
//    2^16 rows would not stay in cache).
//
//===----------------------------------------------------------------------===//

#include "swan/Codegen/Passes.h"

#include "mlir/IR/Matchers.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"
#include "llvm/TargetParser/Host.h"
#include "llvm/TargetParser/Triple.h"

namespace swan {
#define GEN_PASS_DEF_SWANLEGALIZENARROWEXPANDLOAD
#include "swan/Codegen/Passes.h.inc"
} // namespace swan

using namespace mlir;

namespace {

/// Bytes one shuffle reads: an SSSE3 pshufb.
constexpr int64_t kShuffleBytes = 16;

/// Lanes one shuffle fills for elements of `bytes` bytes: a whole window,
/// except that int8 lanes go 8 at a time (a table of 256 rows, not 65536).
int64_t partLanesFor(int64_t bytes) {
  return bytes == 1 ? 8 : kShuffleBytes / bytes;
}

/// The address of `base[indices]`, the last index replaced by `last`, as an
/// LLVM pointer (the memref's innermost stride is 1).
Value elementAddress(PatternRewriter &rewriter, Location loc, Value base,
                     ValueRange indices, Value last) {
  auto metadata = memref::ExtractStridedMetadataOp::create(rewriter, loc, base);
  Value linear = metadata.getOffset();
  for (auto [i, stride] : llvm::enumerate(metadata.getStrides())) {
    Value index = i + 1 == indices.size() ? last : indices[i];
    linear = arith::AddIOp::create(
        rewriter, loc, linear,
        arith::MulIOp::create(rewriter, loc, index, stride));
  }
  Value aligned =
      memref::ExtractAlignedPointerAsIndexOp::create(rewriter, loc, base);
  int64_t bytes = cast<MemRefType>(base.getType()).getElementTypeBitWidth() / 8;
  Value address = arith::AddIOp::create(
      rewriter, loc, aligned,
      arith::MulIOp::create(
          rewriter, loc, linear,
          arith::ConstantIndexOp::create(rewriter, loc, bytes)));
  Value address64 =
      arith::IndexCastOp::create(rewriter, loc, rewriter.getI64Type(), address);
  return LLVM::IntToPtrOp::create(
      rewriter, loc, LLVM::LLVMPointerType::get(rewriter.getContext()),
      address64);
}

struct NarrowExpandLoadAsBits : OpRewritePattern<vector::ExpandLoadOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(vector::ExpandLoadOp op,
                                PatternRewriter &rewriter) const override {
    VectorType type = op.getVectorType();
    Type element = type.getElementType();
    if (!isa<MemRefType>(op.getBase().getType()) || !isa<FloatType>(element) ||
        element.getIntOrFloatBitWidth() != 16 || type.getRank() != 1)
      return rewriter.notifyMatchFailure(op, "not a 16-bit float load");
    Location loc = op.getLoc();
    VectorType bitsType = type.clone(rewriter.getIntegerType(16));
    Value pointer = elementAddress(rewriter, loc, op.getBase(), op.getIndices(),
                                   op.getIndices().back());
    Value passThru =
        arith::BitcastOp::create(rewriter, loc, bitsType, op.getPassThru());
    Value bits = LLVM::masked_expandload::create(
        rewriter, loc, TypeRange{bitsType}, pointer, op.getMask(), passThru,
        /*align=*/2);
    rewriter.replaceOpWithNewOp<arith::BitcastOp>(op, type, bits);
    return success();
  }
};

/// The symbol of the shuffle table for elements of `bytes` bytes.
std::string shuffleTableName(int64_t bytes) {
  return "__swan_expand_shuffles_" + std::to_string(bytes * 8);
}

/// The table of shuffle controls for elements of `bytes` bytes: row m sends
/// the r-th element of a 16-byte window to the lane of m's r-th set bit and
/// zeroes the lanes whose bit is clear, and any bytes past the part's lanes
/// (control bytes 0x80).
memref::GlobalOp createShuffleTable(OpBuilder &builder, Location loc,
                                    int64_t bytes) {
  int64_t lanes = partLanesFor(bytes);
  int64_t rows = int64_t(1) << lanes;
  SmallVector<int8_t> control;
  for (int64_t m = 0; m < rows; ++m) {
    for (int64_t lane = 0, rank = 0; lane < lanes; ++lane) {
      bool kept = (m >> lane) & 1;
      for (int64_t b = 0; b < bytes; ++b)
        control.push_back(kept ? int8_t(rank * bytes + b) : int8_t(0x80));
      rank += kept;
    }
    control.resize((m + 1) * kShuffleBytes, int8_t(0x80));
  }
  auto type = MemRefType::get({rows, kShuffleBytes}, builder.getI8Type());
  auto value = DenseElementsAttr::get(
      RankedTensorType::get(type.getShape(), type.getElementType()),
      ArrayRef<int8_t>(control));
  return memref::GlobalOp::create(builder, loc, shuffleTableName(bytes),
                                  builder.getStringAttr("private"), type, value,
                                  /*constant=*/true,
                                  /*alignment=*/builder.getI64IntegerAttr(64));
}

bool isZeroSplat(Value value) {
  return matchPattern(value, m_Zero()) || matchPattern(value, m_AnyZeroFloat());
}

/// An expanding load of 8-, 16- or 32-bit elements as byte shuffles, in parts
/// of 16 bytes (8 for int8): part p of the result is a 16-byte window of the
/// row starting at its first value, shuffled by the table row of p's mask
/// bits. A window
/// may run up to 16 bytes past the row's last value. A load whose
/// swan.readable_tail promises that much is rewritten as it is; any other
/// checks at run time that another row of at least a window's length
/// follows (rows are contiguous or further apart), and otherwise (the last
/// row of the memref, short rows, 1-D memrefs whose vector might reach past
/// the end) gathers each window element by element, never LLVM's own
/// expanding load (a branch per lane here).
struct ExpandLoadAsShuffles : OpRewritePattern<vector::ExpandLoadOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(vector::ExpandLoadOp op,
                                PatternRewriter &rewriter) const override {
    VectorType type = op.getVectorType();
    auto memrefType = dyn_cast<MemRefType>(op.getBase().getType());
    int64_t bits = type.getElementTypeBitWidth();
    if (!memrefType || type.getRank() != 1 ||
        (bits != 8 && bits != 16 && bits != 32))
      return rewriter.notifyMatchFailure(op, "not 8-, 16- or 32-bit lanes");
    int64_t bytes = bits / 8, partLanes = partLanesFor(bytes);
    int64_t lanes = type.getNumElements();
    if (lanes % partLanes != 0 || lanes > 64)
      return rewriter.notifyMatchFailure(op, "lanes do not fill whole parts");
    auto table = SymbolTable::lookupNearestSymbolFrom<memref::GlobalOp>(
        op, rewriter.getStringAttr(shuffleTableName(bytes)));
    if (!table)
      return rewriter.notifyMatchFailure(op, "no shuffle table in scope");

    auto tail = op->getAttrOfType<IntegerAttr>(swan::kReadableTailAttrName);
    if (tail && tail.getInt() >= kShuffleBytes) {
      rewriter.replaceOp(op, shuffled(rewriter, op, table));
      return success();
    }
    auto branch = scf::IfOp::create(
        rewriter, op.getLoc(),
        windowsStayInside(rewriter, op, kShuffleBytes / bytes),
        [&](OpBuilder &, Location loc) {
          scf::YieldOp::create(rewriter, loc, shuffled(rewriter, op, table));
        },
        [&](OpBuilder &, Location loc) {
          scf::YieldOp::create(rewriter, loc,
                               shuffled(rewriter, op, table, /*gather=*/true));
        });
    rewriter.replaceOp(op, branch.getResults());
    return success();
  }

private:
  /// Whether every window of `op`, `windowLanes` elements long, lies inside
  /// the memref (see above).
  static Value windowsStayInside(PatternRewriter &rewriter,
                                 vector::ExpandLoadOp op, int64_t windowLanes) {
    Location loc = op.getLoc();
    Value base = op.getBase();
    int64_t rank = cast<MemRefType>(base.getType()).getRank();
    auto constant = [&](int64_t v) -> Value {
      return arith::ConstantIndexOp::create(rewriter, loc, v);
    };
    auto atLeast = [&](Value a, Value b) -> Value {
      return arith::CmpIOp::create(rewriter, loc, arith::CmpIPredicate::sge, a,
                                   b);
    };
    Value rowLength = memref::DimOp::create(rewriter, loc, base, rank - 1);
    if (rank == 1) {
      Value end = arith::AddIOp::create(
          rewriter, loc, op.getIndices().back(),
          constant(op.getVectorType().getNumElements() + windowLanes));
      return atLeast(rowLength, end);
    }
    Value rows = memref::DimOp::create(rewriter, loc, base, rank - 2);
    Value next = arith::AddIOp::create(rewriter, loc, op.getIndices()[rank - 2],
                                       constant(1));
    Value anotherRow = arith::CmpIOp::create(
        rewriter, loc, arith::CmpIPredicate::slt, next, rows);
    return arith::AndIOp::create(rewriter, loc, anotherRow,
                                 atLeast(rowLength, constant(windowLanes)));
  }

  /// The `count` elements of the row from `start` on, at the front of a
  /// 16-byte window whose other lanes are zero: a short loop of element
  /// loads that never leaves the row.
  static Value gatheredWindow(PatternRewriter &rewriter,
                              vector::ExpandLoadOp op, Value start,
                              Value count) {
    Location loc = op.getLoc();
    Type element = op.getVectorType().getElementType();
    int64_t windowLanes = kShuffleBytes * 8 / element.getIntOrFloatBitWidth();
    VectorType windowType = VectorType::get({windowLanes}, element);
    Value zeros = arith::ConstantOp::create(rewriter, loc, windowType,
                                            rewriter.getZeroAttr(windowType));
    auto loop = scf::ForOp::create(
        rewriter, loc, arith::ConstantIndexOp::create(rewriter, loc, 0), count,
        arith::ConstantIndexOp::create(rewriter, loc, 1), ValueRange{zeros},
        [&](OpBuilder &b, Location l, Value i, ValueRange window) {
          SmallVector<Value> at(op.getIndices());
          at.back() = arith::AddIOp::create(b, l, start, i);
          Value value = memref::LoadOp::create(b, l, op.getBase(), at);
          scf::YieldOp::create(b, l,
                               ValueRange{vector::InsertOp::create(
                                   b, l, value, window[0], OpFoldResult(i))});
        });
    return vector::BitCastOp::create(
        rewriter, loc, VectorType::get({kShuffleBytes}, rewriter.getI8Type()),
        loop.getResult(0));
  }

  /// The expansion, its windows loaded whole or, with `gather`, gathered
  /// element by element inside the row.
  static Value shuffled(PatternRewriter &rewriter, vector::ExpandLoadOp op,
                        memref::GlobalOp table, bool gather = false) {
    Location loc = op.getLoc();
    VectorType type = op.getVectorType();
    int64_t bytes = type.getElementTypeBitWidth() / 8;
    int64_t lanes = type.getNumElements(), partLanes = partLanesFor(bytes);
    Type index = rewriter.getIndexType();
    IntegerType wordType = rewriter.getIntegerType(lanes);
    auto constantWord = [&](const APInt &v) -> Value {
      return arith::ConstantOp::create(rewriter, loc,
                                       rewriter.getIntegerAttr(wordType, v));
    };
    VectorType windowType =
        VectorType::get({kShuffleBytes}, rewriter.getI8Type());
    Value word = vector::ExtractOp::create(
        rewriter, loc,
        vector::BitCastOp::create(rewriter, loc, VectorType::get({1}, wordType),
                                  op.getMask()),
        int64_t(0));
    Value controls = memref::GetGlobalOp::create(rewriter, loc, table.getType(),
                                                 table.getSymName());
    Value zero = arith::ConstantIndexOp::create(rewriter, loc, 0);
    bool zeroPassThru = isZeroSplat(op.getPassThru());
    Value result = zeroPassThru
                       ? arith::ConstantOp::create(rewriter, loc, type,
                                                   rewriter.getZeroAttr(type))
                             .getResult()
                       : op.getPassThru();
    Value start = op.getIndices().back();
    for (int64_t p = 0; p < lanes / partLanes; ++p) {
      Value partBits = word;
      if (partLanes < lanes)
        partBits = arith::AndIOp::create(
            rewriter, loc,
            arith::ShRUIOp::create(rewriter, loc, word,
                                   constantWord(APInt(lanes, p * partLanes))),
            constantWord(APInt::getLowBitsSet(lanes, partLanes)));
      Value kept = arith::IndexCastUIOp::create(
          rewriter, loc, index, math::CtPopOp::create(rewriter, loc, partBits));
      Value window =
          gather
              ? gatheredWindow(rewriter, op, start, kept)
              : LLVM::LoadOp::create(rewriter, loc, windowType,
                                     elementAddress(rewriter, loc, op.getBase(),
                                                    op.getIndices(), start),
                                     /*alignment=*/1)
                    .getResult();
      Value row = arith::IndexCastUIOp::create(rewriter, loc, index, partBits);
      Value control = vector::LoadOp::create(rewriter, loc, windowType,
                                             controls, ValueRange{row, zero});
      Value part = LLVM::CallIntrinsicOp::create(
                       rewriter, loc, windowType,
                       rewriter.getStringAttr("llvm.x86.ssse3.pshuf.b.128"),
                       ValueRange{window, control})
                       .getResult(0);
      part = vector::BitCastOp::create(
          rewriter, loc,
          VectorType::get({kShuffleBytes / bytes}, type.getElementType()),
          part);
      if (partLanes < kShuffleBytes / bytes)
        part = vector::ExtractStridedSliceOp::create(
            rewriter, loc, part, ArrayRef<int64_t>{0},
            ArrayRef<int64_t>{partLanes}, ArrayRef<int64_t>{1});
      SmallVector<int64_t> offset{p * partLanes}, stride{1};
      if (!zeroPassThru) {
        Value partMask = vector::ExtractStridedSliceOp::create(
            rewriter, loc, op.getMask(), offset, ArrayRef<int64_t>{partLanes},
            stride);
        Value partPassThru = vector::ExtractStridedSliceOp::create(
            rewriter, loc, op.getPassThru(), offset,
            ArrayRef<int64_t>{partLanes}, stride);
        part = arith::SelectOp::create(rewriter, loc, partMask, part,
                                       partPassThru);
      }
      result = vector::InsertStridedSliceOp::create(rewriter, loc, part, result,
                                                    offset, stride);
      start = arith::AddIOp::create(rewriter, loc, start, kept);
    }
    return result;
  }
};

/// Whether this process runs on x86 without AVX-512 VBMI2, where expanding
/// loads of 16-bit lanes have no instruction of their own.
bool hostNeedsShuffles() {
  llvm::Triple host(llvm::sys::getProcessTriple());
  if (!host.isX86())
    return false;
  llvm::StringMap<bool> features = llvm::sys::getHostCPUFeatures();
  return !features.lookup("avx512vbmi2") && features.lookup("ssse3");
}

struct SwanLegalizeNarrowExpandLoadPass
    : swan::impl::SwanLegalizeNarrowExpandLoadBase<
          SwanLegalizeNarrowExpandLoadPass> {
  using Base::Base;

  void runOnOperation() override {
    bool shuffles;
    if (expandWith == "host") {
      shuffles = hostNeedsShuffles();
    } else if (expandWith == "pshufb" || expandWith == "vpexpand") {
      shuffles = expandWith == "pshufb";
    } else {
      getOperation()->emitError()
          << "expand-with must be host, vpexpand or pshufb, not '" << expandWith
          << "'";
      return signalPassFailure();
    }

    RewritePatternSet patterns(&getContext());
    if (shuffles && !addShuffleTables())
      return signalPassFailure();
    if (shuffles)
      patterns.add<ExpandLoadAsShuffles>(&getContext());
    else
      patterns.add<NarrowExpandLoadAsBits>(&getContext());
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }

private:
  /// Adds the shuffle tables the expanding loads below need to the symbol
  /// table that holds them (the module).
  bool addShuffleTables() {
    llvm::SmallSetVector<int64_t, 2> widths;
    Operation *scope = nullptr;
    getOperation()->walk([&](vector::ExpandLoadOp op) {
      int64_t bits = op.getVectorType().getElementTypeBitWidth();
      if (bits == 8 || bits == 16 || bits == 32)
        widths.insert(bits / 8);
      scope = SymbolTable::getNearestSymbolTable(op);
    });
    if (widths.empty())
      return true;
    if (!scope) {
      getOperation()->emitError("expanding loads outside any symbol table");
      return false;
    }
    OpBuilder builder(&scope->getRegion(0).front(),
                      scope->getRegion(0).front().begin());
    for (int64_t bytes : widths)
      if (!SymbolTable::lookupSymbolIn(scope, shuffleTableName(bytes)))
        createShuffleTable(builder, scope->getLoc(), bytes);
    return true;
  }
};
} // namespace
