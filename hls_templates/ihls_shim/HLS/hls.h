// A shim of the Intel HLS Compiler's HLS/hls.h for g++ (codesign; not Intel's header).
//
// Written from the documented API in the Intel High Level Synthesis Compiler Pro Edition
// Reference Manual (Intel document 683349): "Component Interfaces" (ihc::stream_in,
// ihc::stream_out and their template parameters and function APIs, interface argument
// attributes), "Component Memories (Memory Attributes)", "Loops in Components" (loop pragmas),
// "Component Concurrency" and "Component Target Frequency" (component attributes).
//
// Two uses:
//  * built with -D__INTELFPGA_COMPILER__ (`make check-ihls`), g++ checks that generated code
//    uses only those names, with the documented number of arguments, template parameters
//    that belong to the stream they are given to, and stream members with the documented
//    signatures. It is a syntax and type check of the i++ flavour, not synthesis: nothing here
//    knows about scheduling, resources or whether i++ would accept the design.
//  * built without it (the C simulation), the streams are FIFOs, as in i++'s x86 emulation,
//    and every attribute expands to nothing.
// Loop pragmas cannot be checked by g++ (it ignores unknown pragmas); `make check-ihls` checks
// their names against IHLS_LOOP_PRAGMAS below with a separate scan.
#ifndef CODESIGN_IHLS_SHIM_HLS_H
#define CODESIGN_IHLS_SHIM_HLS_H

#include <cstdio>
#include <cstdlib>
#include <deque>
#include <type_traits>

// Loop pragmas of document 683349, "Loops in Components" (checked by `make check-ihls`):
// IHLS_LOOP_PRAGMAS: ii ivdep loop_coalesce unroll max_concurrency speculated_iterations
// IHLS_LOOP_PRAGMAS: disable_loop_pipelining max_interleaving nofusion

#ifdef __INTELFPGA_COMPILER__
// Documented attributes expand to GCC attributes that are valid where i++ accepts the
// originals (or to nothing), so a misspelt name or a wrong argument count fails to compile.
// Their argument values are not checked.
#define component __attribute__((noinline))
// Component attributes ("Component Concurrency", "Component Target Frequency", "Component
// Interfaces").
#define hls_component_ii(value) __attribute__((noinline))
#define hls_max_concurrency(value) __attribute__((noinline))
#define hls_scheduler_target_fmax_mhz(value) __attribute__((noinline))
#define hls_avalon_streaming_component __attribute__((noinline))
#define hls_avalon_agent_component __attribute__((noinline))
#define hls_always_run_component __attribute__((noinline))
#define hls_stall_free_return __attribute__((noinline))
// Interface argument attributes.
#define hls_conduit_argument
#define hls_avalon_agent_register_argument
#define hls_avalon_agent_memory_argument(size)
#define hls_stable_argument
// Memory attributes ("Component Memories").
#define hls_register
#define hls_memory
#define hls_memory_impl(kind)
#define hls_numbanks(value)
#define hls_bankwidth(value)
#define hls_singlepump
#define hls_doublepump
#define hls_max_replicates(value)
#define hls_private_copies(value)
#define hls_simple_dual_port_memory
#define hls_init_on_reset
#define hls_init_on_powerup
#define hls_bankbits(...)
#define hls_merge(label, direction)
#define hls_numreadports(value)
#define hls_numwriteports(value)
#else
#ifndef component
#define component
#endif
#define hls_component_ii(value)
#define hls_max_concurrency(value)
#define hls_scheduler_target_fmax_mhz(value)
#define hls_avalon_streaming_component
#define hls_avalon_agent_component
#define hls_always_run_component
#define hls_stall_free_return
#define hls_conduit_argument
#define hls_avalon_agent_register_argument
#define hls_avalon_agent_memory_argument(size)
#define hls_stable_argument
#define hls_register
#define hls_memory
#define hls_memory_impl(kind)
#define hls_numbanks(value)
#define hls_bankwidth(value)
#define hls_singlepump
#define hls_doublepump
#define hls_max_replicates(value)
#define hls_private_copies(value)
#define hls_simple_dual_port_memory
#define hls_init_on_reset
#define hls_init_on_powerup
#define hls_bankbits(...)
#define hls_merge(label, direction)
#define hls_numreadports(value)
#define hls_numwriteports(value)
#endif

namespace ihc {

// Stream template parameters ("Streaming Input Interfaces", "Streaming Output Interfaces").
template <int capacity> struct buffer { static_assert(capacity >= 0, "ihc::buffer<N>: N >= 0"); };
template <int cycles> struct readyLatency {
    static_assert(cycles >= 0 && cycles <= 8, "ihc::readyLatency<N>: 0 <= N <= 8");
};
template <int bits> struct bitsPerSymbol { static_assert(bits > 0, "ihc::bitsPerSymbol<N>: N > 0"); };
template <bool value> struct firstSymbolInHighOrderBits {};
template <bool value> struct usesPackets {};
template <bool value> struct usesEmpty {};
template <bool value> struct usesValid {};
template <bool value> struct usesReady {};

namespace shim {

template <typename Parameter, template <auto> class Kind> struct is : std::false_type {};
template <auto value, template <auto> class Kind> struct is<Kind<value>, Kind> : std::true_type {};

template <template <auto> class Kind, typename... Parameters>
constexpr bool has = (false || ... || is<Parameters, Kind>::value);

template <typename... Parameters>
constexpr bool packets = (false || ... || std::is_same<Parameters, usesPackets<true>>::value);

template <typename Parameter>
constexpr bool input_parameter =
    is<Parameter, buffer>::value || is<Parameter, readyLatency>::value ||
    is<Parameter, bitsPerSymbol>::value || is<Parameter, firstSymbolInHighOrderBits>::value ||
    is<Parameter, usesPackets>::value || is<Parameter, usesEmpty>::value ||
    is<Parameter, usesValid>::value;

template <typename Parameter>
constexpr bool output_parameter =
    is<Parameter, readyLatency>::value || is<Parameter, bitsPerSymbol>::value ||
    is<Parameter, firstSymbolInHighOrderBits>::value || is<Parameter, usesPackets>::value ||
    is<Parameter, usesEmpty>::value || is<Parameter, usesReady>::value;

[[noreturn]] inline void empty_stream(const char *what) {
    std::fprintf(stderr, "ihc shim: %s on an empty stream\n", what);
    std::abort();
}

// A FIFO of words with their packet sideband signals, as i++'s x86 emulation keeps them.
template <typename T> class fifo {
  public:
    void push(const T &data, bool sop, bool eop) { words_.push_back(Word{data, sop, eop}); }
    bool empty() const { return words_.empty(); }
    T pop(bool &sop, bool &eop, const char *what) {
        if (words_.empty()) {
            empty_stream(what);
        }
        const Word word = words_.front();
        words_.pop_front();
        sop = word.sop;
        eop = word.eop;
        return word.data;
    }

  private:
    struct Word {
        T data;
        bool sop;
        bool eop;
    };
    std::deque<Word> words_;
};

} // namespace shim

// Streaming input interface to a component: the testbench writes, the component reads.
template <typename T, typename... Parameters> class stream_in {
    static_assert((true && ... && shim::input_parameter<Parameters>),
                  "ihc::stream_in: a template parameter that stream_in does not take");

  public:
    stream_in() = default;
    stream_in(const stream_in &) = delete;
    stream_in &operator=(const stream_in &) = delete;

    // Component side.
    T read() {
        bool sop, eop;
        return fifo_.pop(sop, eop, "stream_in::read");
    }
    T tryRead(bool &success) {
        success = !fifo_.empty();
        return success ? read() : T();
    }
    template <bool P = shim::packets<Parameters...>> T read(bool &sop, bool &eop) {
        static_assert(P, "ihc::stream_in::read(sop, eop) needs ihc::usesPackets<true>");
        return fifo_.pop(sop, eop, "stream_in::read");
    }
    template <bool P = shim::packets<Parameters...>> T tryRead(bool &success, bool &sop, bool &eop) {
        static_assert(P, "ihc::stream_in::tryRead(success, sop, eop) needs ihc::usesPackets<true>");
        success = !fifo_.empty();
        return success ? fifo_.pop(sop, eop, "stream_in::tryRead") : T();
    }

    // Testbench side.
    void write(const T &data) { fifo_.push(data, false, false); }
    template <bool P = shim::packets<Parameters...>> void write(const T &data, bool sop, bool eop) {
        static_assert(P, "ihc::stream_in::write(data, sop, eop) needs ihc::usesPackets<true>");
        fifo_.push(data, sop, eop);
    }

  private:
    shim::fifo<T> fifo_;
};

// Streaming output interface from a component: the component writes, the testbench reads.
template <typename T, typename... Parameters> class stream_out {
    static_assert((true && ... && shim::output_parameter<Parameters>),
                  "ihc::stream_out: a template parameter that stream_out does not take");

  public:
    stream_out() = default;
    stream_out(const stream_out &) = delete;
    stream_out &operator=(const stream_out &) = delete;

    // Component side.
    void write(const T &data) { fifo_.push(data, false, false); }
    bool tryWrite(const T &data) {
        write(data);
        return true;
    }
    template <bool P = shim::packets<Parameters...>> void write(const T &data, bool sop, bool eop) {
        static_assert(P, "ihc::stream_out::write(data, sop, eop) needs ihc::usesPackets<true>");
        fifo_.push(data, sop, eop);
    }
    template <bool P = shim::packets<Parameters...>> bool tryWrite(const T &data, bool sop, bool eop) {
        static_assert(P, "ihc::stream_out::tryWrite(data, sop, eop) needs ihc::usesPackets<true>");
        fifo_.push(data, sop, eop);
        return true;
    }

    // Testbench side.
    T read() {
        bool sop, eop;
        return fifo_.pop(sop, eop, "stream_out::read");
    }
    template <bool P = shim::packets<Parameters...>> T read(bool &sop, bool &eop) {
        static_assert(P, "ihc::stream_out::read(sop, eop) needs ihc::usesPackets<true>");
        return fifo_.pop(sop, eop, "stream_out::read");
    }

  private:
    shim::fifo<T> fifo_;
};

} // namespace ihc

#endif
