// REQUIRES: ptxas
// Every PTX swan generates must assemble for sm_80 and sm_90: this file's
// kernels, and each specialisation the runtime embeds (built beside it).
// RUN: swan-ptx %S/swan-ptx.mlir --chip=sm_80 -o %t.sm80.ptx
// RUN: %ptxas -arch=sm_80 %t.sm80.ptx -o %t.sm80.cubin
// RUN: swan-ptx %S/swan-ptx.mlir --chip=sm_90 -o %t.sm90.ptx
// RUN: %ptxas -arch=sm_90 %t.sm90.ptx -o %t.sm90.cubin
// RUN: ls %swan_cuda_ptx_dir/kernels_*.ptx | count 18
// RUN: for f in %swan_cuda_ptx_dir/kernels_*.ptx; do %ptxas -arch=sm_80 $f -o %t.cubin || exit 1; %ptxas -arch=sm_90 $f -o %t.cubin || exit 1; done
