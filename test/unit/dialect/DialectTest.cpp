//===- DialectTest.cpp - verifier checks from C++ -------------------------===//

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Parser/Parser.h"
#include "swan/Dialect/SwanOps.h"
#include "swan/Registration.h"

#include <gtest/gtest.h>

#include <string>

namespace {

class SwanVerifierTest : public ::testing::Test {
protected:
  SwanVerifierTest() {
    mlir::DialectRegistry registry;
    swan::registerAllDialects(registry);
    context.appendDialectRegistry(registry);
    context.loadAllAvailableDialects();
  }

  /// Parses and verifies `source`; returns the first diagnostic, or "" when
  /// the module is valid.
  std::string firstError(const std::string &source) {
    std::string message;
    mlir::ScopedDiagnosticHandler handler(&context, [&](mlir::Diagnostic &d) {
      if (message.empty())
        message = d.str();
      return mlir::success();
    });
    mlir::OwningOpRef<mlir::ModuleOp> module =
        mlir::parseSourceString<mlir::ModuleOp>(source, &context);
    if (module && message.empty())
      return "";
    return message.empty() ? "parse failed without a diagnostic" : message;
  }

  mlir::MLIRContext context;
};

std::string winnow(const std::string &inputType,
                   const std::string &resultTypes) {
  return "func.func @f(%x: " + inputType +
         ", %k: index) {\n  %v, %i = swan.winnow %x keep %k : " + inputType +
         " -> " + resultTypes + "\n  return\n}\n";
}

TEST_F(SwanVerifierTest, WinnowAcceptsEveryHeadDimensionItsIndicesAddress) {
  for (int headDim : {64, 128, 256}) {
    std::string type = "tensor<?x" + std::to_string(headDim) + "xf32>";
    EXPECT_EQ(firstError(winnow(type, "tensor<?x?xf16>, tensor<?x?xi8>")), "")
        << "D = " << headDim;
  }
}

TEST_F(SwanVerifierTest, WinnowRejectsIndicesTooNarrowForTheHeadDimension) {
  EXPECT_EQ(
      firstError(winnow("tensor<?x512xf32>", "tensor<?x?xf16>, tensor<?x?xi8>")),
      "'swan.winnow' op result indices of type 'i8' cannot address head "
      "dimension 512");
  EXPECT_EQ(
      firstError(winnow("tensor<?x512xf32>", "tensor<?x?xf16>, tensor<?x?xi16>")),
      "");
}

TEST_F(SwanVerifierTest, WinnowRejectsMoreKeptComponentsThanTheHeadDimension) {
  EXPECT_EQ(firstError(winnow("tensor<?x64xf32>",
                              "tensor<?x65xf16>, tensor<?x65xi8>")),
            "'swan.winnow' op result keeps 65 components, more than the head "
            "dimension 64");
}

TEST_F(SwanVerifierTest, BuilderCreatedRotateIsVerified) {
  mlir::OpBuilder builder(&context);
  mlir::Location loc = builder.getUnknownLoc();
  auto module = mlir::ModuleOp::create(loc);
  builder.setInsertionPointToEnd(module.getBody());
  auto f32 = builder.getF32Type();
  auto rows = mlir::RankedTensorType::get({mlir::ShapedType::kDynamic, 64}, f32);
  auto rotation = mlir::RankedTensorType::get({32, 32}, f32);
  auto func = mlir::func::FuncOp::create(
      builder, loc, "f", builder.getFunctionType({rows, rotation}, {}));
  builder.setInsertionPointToEnd(func.addEntryBlock());
  swan::RotateOp::create(builder, loc, rows, func.getArgument(0),
                         func.getArgument(1));
  mlir::func::ReturnOp::create(builder, loc);

  std::string message;
  mlir::ScopedDiagnosticHandler handler(&context, [&](mlir::Diagnostic &d) {
    message = d.str();
    return mlir::success();
  });
  EXPECT_TRUE(mlir::failed(mlir::verify(module)));
  EXPECT_EQ(message, "'swan.rotate' op head dimensions of the rotation and the "
                     "input disagree (32 vs 64)");
  module->erase();
}

} // namespace
