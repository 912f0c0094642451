// codesign's block-sparse dense kernel for hls4ml's Quartus backend (registered through hls4ml's
// extension API by codesign.baseline.hls4ml_sparse; copied into firmware/nnet_utils/).
//
// The same arithmetic as the layers of a codesign HLS project (hls_templates/layer.h.j2): the
// weight matrix is stored block-compressed, only the kept blocks exist, and `tiles` multiplier
// tiles of block_rows x block_cols each compute one kept block per cycle for `reuse_factor`
// cycles. A pruned block costs no multiplier and no cycle. Accumulation is exact in accum_t;
// the result is cast once to res_T (its rounding and overflow modes apply).
#ifndef NNET_BLOCK_SPARSE_DENSE_H_
#define NNET_BLOCK_SPARSE_DENSE_H_

#include "nnet_common.h"

namespace nnet {

struct block_sparse_dense_config {
    typedef float accum_t;
    typedef float bias_t;
    typedef float weight_t;

    static const unsigned n_in = 4;
    static const unsigned n_out = 1;
    static const unsigned block_rows = 1;
    static const unsigned block_cols = 4;
    static const unsigned padded_inputs = 4;   // n_in rounded up to whole block-columns
    static const unsigned padded_outputs = 1;  // n_out rounded up to whole block-rows
    static const unsigned nnz_blocks = 1;      // kept blocks
    static const unsigned tiles = 1;           // ceil(nnz_blocks / reuse_factor)
    static const unsigned reuse_factor = 1;

    // Block-column of kept block `block`; the kept block tile `tile` computes in cycle
    // `cycle` (-1: idle) and its block-row.
    static int block_col(int block) { return 0; }
    static int slot_block(int tile, int cycle) { return 0; }
    static int slot_row(int tile, int cycle) { return 0; }
};

// weights: the kept blocks in block-CSR order, [block][row in block][column in block];
// biases: one per output row, padded to whole block-rows.
template <class data_T, class res_T, typename CONFIG_T>
void block_sparse_dense(data_T data[CONFIG_T::n_in], res_T res[CONFIG_T::n_out],
                        const typename CONFIG_T::weight_t
                            weights[CONFIG_T::nnz_blocks * CONFIG_T::block_rows * CONFIG_T::block_cols],
                        const typename CONFIG_T::bias_t biases[CONFIG_T::padded_outputs]) {
    hls_register data_T x_padded[CONFIG_T::padded_inputs];
    #pragma unroll
    for (unsigned i = 0; i < CONFIG_T::padded_inputs; i++) {
        x_padded[i] = i < CONFIG_T::n_in ? data[i] : data_T(0);
    }

    hls_register typename CONFIG_T::accum_t acc[CONFIG_T::padded_outputs];
    #pragma unroll
    for (unsigned r = 0; r < CONFIG_T::padded_outputs; r++) {
        acc[r] = (typename CONFIG_T::accum_t)biases[r];
    }

    // One iteration per cycle: every tile multiplies one kept block by its input slice.
    #pragma ii 1
    for (unsigned cycle = 0; cycle < CONFIG_T::reuse_factor; cycle++) {
        #pragma unroll
        for (unsigned tile = 0; tile < CONFIG_T::tiles; tile++) {
            const int block = CONFIG_T::slot_block(tile, cycle);
            if (block < 0) {
                continue; // idle slot of the last tile
            }
            const int row0 = CONFIG_T::slot_row(tile, cycle) * CONFIG_T::block_rows;
            const int col0 = CONFIG_T::block_col(block) * CONFIG_T::block_cols;
            #pragma unroll
            for (unsigned i = 0; i < CONFIG_T::block_rows; i++) {
                typename CONFIG_T::accum_t partial = 0;
                #pragma unroll
                for (unsigned j = 0; j < CONFIG_T::block_cols; j++) {
                    partial += weights[(block * CONFIG_T::block_rows + i) * CONFIG_T::block_cols + j] * x_padded[col0 + j];
                }
                acc[row0 + i] += partial;
            }
        }
    }

    #pragma unroll
    for (unsigned r = 0; r < CONFIG_T::n_out; r++) {
        res[r] = static_cast<res_T>(acc[r]);
    }
}

} // namespace nnet

#endif
