// libpcap, loaded when `import` or `sniff` first needs it rather than linked: a siotap binary
// then starts on machines without libpcap, and only those two commands ask for it.
// The types and constants come from libpcap's own header (libpcap-dev at build time).
#pragma once
#include <pcap/pcap.h>
#include <stddef.h>

/// The functions siotap calls, resolved from the loaded library.
struct siotap_pcap_api {
    pcap_t *(*open_offline_with_tstamp_precision)(const char *, u_int, char *);
    pcap_t *(*create)(const char *, char *);
    int (*set_snaplen)(pcap_t *, int);
    int (*set_timeout)(pcap_t *, int);
    int (*set_immediate_mode)(pcap_t *, int);
    int (*set_buffer_size)(pcap_t *, int);
    int (*activate)(pcap_t *);
    int (*setnonblock)(pcap_t *, int, char *);
    int (*datalink)(pcap_t *);
    const char *(*datalink_val_to_name)(int);
    int (*compile)(pcap_t *, struct bpf_program *, const char *, int, bpf_u_int32);
    int (*setfilter)(pcap_t *, struct bpf_program *);
    void (*freecode)(struct bpf_program *);
    char *(*geterr)(pcap_t *);
    int (*next_ex)(pcap_t *, struct pcap_pkthdr **, const u_char **);
    FILE *(*file)(pcap_t *);
    int (*stats)(pcap_t *, struct pcap_stat *);
    void (*close)(pcap_t *);
};

/// Loads libpcap (`path` if given, else the names Linux distributions and macOS install it
/// under) once; NULL with the reason in `error` when it cannot be loaded or lacks a function.
const struct siotap_pcap_api *siotap_pcap_load(const char *path, char *error, size_t size);
