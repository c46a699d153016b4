# The CUDA backend's kernels: every specialisation (head dim D, group G,
# storage type) is lowered at build time by swan-ptx, the swan-lower-to-nvvm
# pipeline, and its PTX is embedded into SwanCuda. SwanCuda and its users
# link neither MLIR nor libcuda: the driver is opened at run time.

set(SWAN_CUDA_HEAD_DIMS 64 128 256 CACHE STRING "Head dims with CUDA kernels")
set(SWAN_CUDA_GROUPS 1 4 8 CACHE STRING "GQA group sizes with CUDA kernels")
set(SWAN_CUDA_STORAGE f16 f32)
set(SWAN_CUDA_CHIP sm_80 CACHE STRING
  "PTX target of the embedded kernels (newer GPUs JIT-compile it)")

set(swan_cuda_dir ${CMAKE_CURRENT_BINARY_DIR}/cuda)
set(swan_cuda_ptx_files)
set(swan_cuda_keys)
foreach(SWAN_D ${SWAN_CUDA_HEAD_DIMS})
  foreach(SWAN_G ${SWAN_CUDA_GROUPS})
    foreach(SWAN_T ${SWAN_CUDA_STORAGE})
      set(key ${SWAN_D}_${SWAN_G}_${SWAN_T})
      configure_file(CudaKernels.mlir.in ${swan_cuda_dir}/kernels_${key}.mlir
        @ONLY)
      add_custom_command(
        OUTPUT ${swan_cuda_dir}/kernels_${key}.ptx
        COMMAND swan-ptx ${swan_cuda_dir}/kernels_${key}.mlir
          --chip=${SWAN_CUDA_CHIP} -o ${swan_cuda_dir}/kernels_${key}.ptx
        DEPENDS swan-ptx ${swan_cuda_dir}/kernels_${key}.mlir
        COMMENT "swan-ptx: CUDA kernels D=${SWAN_D} G=${SWAN_G} ${SWAN_T}")
      list(APPEND swan_cuda_ptx_files ${swan_cuda_dir}/kernels_${key}.ptx)
      list(APPEND swan_cuda_keys ${key})
    endforeach()
  endforeach()
endforeach()

# Commas: a semicolon would split the argument on the command line.
string(REPLACE ";" "," swan_cuda_key_list "${swan_cuda_keys}")
add_custom_command(
  OUTPUT ${swan_cuda_dir}/CudaPTX.inc
  COMMAND ${CMAKE_COMMAND} -DOUTPUT=${swan_cuda_dir}/CudaPTX.inc
    -DDIR=${swan_cuda_dir} -DKEYS=${swan_cuda_key_list}
    -P ${CMAKE_CURRENT_SOURCE_DIR}/CudaEmbedPTX.cmake
  DEPENDS ${swan_cuda_ptx_files} ${CMAKE_CURRENT_SOURCE_DIR}/CudaEmbedPTX.cmake
  COMMENT "Embedding the CUDA kernels' PTX")

add_library(SwanCuda STATIC CudaDriver.cpp CudaKernels.cpp CudaCache.cpp
  ${swan_cuda_dir}/CudaPTX.inc)
# No MLIR or LLVM in the CUDA runtime: it must run where they are absent.
set_target_properties(SwanCuda PROPERTIES LINK_LIBRARIES "" INTERFACE_LINK_LIBRARIES "")
target_include_directories(SwanCuda PRIVATE ${swan_cuda_dir})
target_link_libraries(SwanCuda PUBLIC ${CMAKE_DL_LIBS})
set_target_properties(SwanCuda PROPERTIES POSITION_INDEPENDENT_CODE ON)
