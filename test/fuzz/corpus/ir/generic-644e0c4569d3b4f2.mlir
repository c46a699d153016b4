"builtin.module"() ({
  "func.func"() <{function_type = (tensor<?x128xf32>, tensor<128x128xf32>, index) -> (tensor<?x?xf16>, tensor<?x?xi8>), sym_name = "rotate_then_winnow"}> ({
  ^bb0(%arg29: tensor<?x128xf32>, %arg30: tensor<128x128xf32>, %arg31: index):
    %10 = "swan.rotate"(%arg29, %arg30) : (tensor<?x128xf32>, tensor<128x128xf32>) -> tensor<?x128xf32>
    %11:2 = "swan.winnow"(%10, %arg31) : (tensor<?x128xf32>, index) -> (tensor<?x?xf16>, tensor<?x?xi8>)
    "func.return"(%11#0, %11#1) : (tensor<?x?xf16>, tensor<?x?xi8>) -> ()
  }) : () -> ()
  "func.func"() <{function_type = (tensor<16x64xf32>, tensor<?x?xbf16>, tensor<2x512xf32>, index) -> (), sym_name = "winnow_shapes"}> ({
  ^bb0(%arg25: tensor<16x64xf32>, %arg26: tensor<?x?xbf16>, %arg27: tensor<2x512xf32>, %arg28: index):
    %7:2 = "swan.winnow"(%arg25, %arg28) : (tensor<16x64xf32>, index) -> (tensor<16x8xf32>, tensor<16x8xi8>)
    %8:2 = "swan.winnow"(%arg26, %arg28) : (tensor<?x?xbf16>, index) -> (tensor<?x?xbf16>, tensor<?x?xi16>)
    %9:2 = "swan.winnow"(%arg27, %arg28) : (tensor<2x512xf32>, index) -> (tensor<2x?xf16>, tensor<2x?xi16>)
    "func.return"() : () -> ()
  }) : () -> ()
  "func.func"() <{function_type = (tensor<?x64xf16>, tensor<64x64xf32>, index) -> (tensor<?x?xf16>, tensor<?x?xi8>), sym_name = "compress"}> ({
  ^bb0(%arg22: tensor<?x64xf16>, %arg23: tensor<64x64xf32>, %arg24: index):
    %6:2 = "swan.compress"(%arg22, %arg23, %arg24) : (tensor<?x64xf16>, tensor<64x64xf32>, index) -> (tensor<?x?xf16>, tensor<?x?xi8>)
    "func.return"(%6#0, %6#1) : (tensor<?x?xf16>, tensor<?x?xi8>) -> ()
  }) : () -> ()
  "func.func"() <{function_type = (tensor<2x32x128xf32>, f32, tensor<8x128x128xf32>, tensor<8x128x128xf32>, tensor<2x8x?x?xf16>, tensor<2x8x?x?xi8>, tensor<2x8x?x?xf16>, tensor<2x8x?x?xi8>, tensor<2x8x128x128xf16>, tensor<2x8x128x128xf16>, tensor<2xi32>, tensor<2xi32>) -> (tensor<2x32x128xf32>, tensor<2x32x128xf32>), sym_name = "decode_attention"}> ({
  ^bb0(%arg10: tensor<2x32x128xf32>, %arg11: f32, %arg12: tensor<8x128x128xf32>, %arg13: tensor<8x128x128xf32>, %arg14: tensor<2x8x?x?xf16>, %arg15: tensor<2x8x?x?xi8>, %arg16: tensor<2x8x?x?xf16>, %arg17: tensor<2x8x?x?xi8>, %arg18: tensor<2x8x128x128xf16>, %arg19: tensor<2x8x128x128xf16>, %arg20: tensor<2xi32>, %arg21: tensor<2xi32>):
    %4 = "swan.decode_attention"(%arg10, %arg11, %arg12, %arg13, %arg14, %arg15, %arg16, %arg17, %arg18, %arg19, %arg20, %arg21) <{group_size = 4 : i64}> : (tensor<2x32x128xf32>, f32, tensor<8x128x128xf32>, tensor<8x128x128xf32>, tensor<2x8x?x?xf16>, tensor<2x8x?x?xi8>, tensor<2x8x?x?xf16>, tensor<2x8x?x?xi8>, tensor<2x8x128x128xf16>, tensor<2x8x128x128xf16>, tensor<2xi32>, tensor<2xi32>) -> tensor<2x32x128xf32>
    %5 = "swan.decode_attention"(%arg10, %arg11, %arg12, %arg13, %arg14, %arg15, %arg16, %arg17, %arg18, %arg19, %arg20, %arg21) <{group_size = 4 : i64, rotated_output}> : (tensor<2x32x128xf32>, f32, tensor<8x128x128xf32>, tensor<8x128x128xf32>, tensor<2x8x?x?xf16>, tensor<2x8x?x?xi8>, tensor<2x8x?x?xf16>, tensor<2x8x?x?xi8>, tensor<2x8x128x128xf16>, tensor<2x8x128x128xf16>, tensor<2xi32>, tensor<2xi32>) -> tensor<2x32x128xf32>
    "func.return"(%4, %5) : (tensor<2x32x128xf32>, tensor<2x32x128xf32>) -> ()
  }) : () -> ()
  "func.func"() <{function_type = (tensor<4x128xf32>, f32, tensor<?x?xf16>, tensor<?x?xi8>, tensor<?x128xf16>, tensor<?x128xf16>) -> (tensor<4xf32>, tensor<4xf32>, tensor<4x128xf32>), sym_name = "partial_attention"}> ({
  ^bb0(%arg4: tensor<4x128xf32>, %arg5: f32, %arg6: tensor<?x?xf16>, %arg7: tensor<?x?xi8>, %arg8: tensor<?x128xf16>, %arg9: tensor<?x128xf16>):
    %2:3 = "swan.partial_attention"(%arg4, %arg5, %arg6, %arg7, %arg9) <{operandSegmentSizes = array<i32: 1, 1, 1, 1, 1, 0>}> : (tensor<4x128xf32>, f32, tensor<?x?xf16>, tensor<?x?xi8>, tensor<?x128xf16>) -> (tensor<4xf32>, tensor<4xf32>, tensor<4x128xf32>)
    %3:3 = "swan.partial_attention"(%arg4, %arg5, %arg8, %arg9) <{operandSegmentSizes = array<i32: 1, 1, 1, 0, 1, 0>}> : (tensor<4x128xf32>, f32, tensor<?x128xf16>, tensor<?x128xf16>) -> (tensor<4xf32>, tensor<4xf32>, tensor<4x128xf32>)
    "func.return"(%2#0, %3#1, %2#2) : (tensor<4xf32>, tensor<4xf32>, tensor<4x128xf32>) -> ()
  }) : () -> ()
  "func.func"() <{function_type = (tensor<?x4xf32>, tensor<?x4xf32>, tensor<?x4x128xf32>, tensor<128x128xf32>) -> (tensor<4x128xf32>, tensor<4x128xf16>), sym_name = "merge_attention"}> ({
  ^bb0(%arg0: tensor<?x4xf32>, %arg1: tensor<?x4xf32>, %arg2: tensor<?x4x128xf32>, %arg3: tensor<128x128xf32>):
    %0 = "swan.merge_attention"(%arg0, %arg1, %arg2, %arg3) : (tensor<?x4xf32>, tensor<?x4xf32>, tensor<?x4x128xf32>, tensor<128x128xf32>) -> tensor<4x128xf32>
    %1 = "swan.merge_attention"(%arg0, %arg1, %arg2) : (tensor<?x4xf32>, tensor<?x4xf32>, tensor<?x4x128xf32>) -> tensor<4x128xf16>
    "func.return"(%0, %1) : (tensor<4x128xf32>, tensor<4x128xf16>) -> ()
  }) : () -> ()
}) : () -> ()

