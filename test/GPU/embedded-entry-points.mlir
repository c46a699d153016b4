// Every embedded specialisation defines each kernel the CUDA runtime
// launches (KernelABI.h; runtime/lib/cuda/Kernels.cpp and DeviceStore.cpp call them by
// name): 18 modules, each with these seven entries and the six of the
// mask encoding.
// RUN: cat %swan_cuda_ptx_dir/kernels_*.ptx | FileCheck %s --check-prefix=COUNT
// RUN: for e in rotate compress compress_stored decode_attention_partial decode_attention_paged_partial decode_attention_rotated_partial decode_attention_rotated_paged_partial compress_mask compress_stored_mask decode_attention_masks_partial decode_attention_masks_paged_partial decode_attention_masks_rotated_partial decode_attention_masks_rotated_paged_partial; do test "$(cat %swan_cuda_ptx_dir/kernels_*.ptx | grep -c "^.visible .entry $e(")" = 18 || { echo "entry $e missing"; exit 1; }; done

// COUNT-COUNT-18: .visible .entry compress_stored(
