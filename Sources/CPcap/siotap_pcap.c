#include "siotap_pcap.h"
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

static struct siotap_pcap_api api;
static const struct siotap_pcap_api *loaded;
static char failure[512];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static int resolve(void *library, const char *name, void **slot, const char *opened) {
    *slot = dlsym(library, name);
    if (*slot == NULL) {
        snprintf(failure, sizeof failure, "%s has no %s (libpcap 1.5 or later is needed)", opened, name);
        return 0;
    }
    return 1;
}

static const struct siotap_pcap_api *load(const char *path) {
    // Debian and Ubuntu install libpcap.so.0.8 (with libpcap.so.1 on newer releases), Fedora
    // and Arch libpcap.so.1; the unversioned name comes only with the -dev package.
    const char *names[] = {"libpcap.so.1", "libpcap.so.0.8", "libpcap.so", "libpcap.A.dylib", NULL};
    const char *only[] = {path, NULL};
    void *library = NULL;
    const char *opened = NULL;
    for (const char **name = path ? only : names; *name != NULL && library == NULL; name++) {
        library = dlopen(*name, RTLD_NOW | RTLD_LOCAL);
        opened = *name;
    }
    if (library == NULL) {
        const char *reason = dlerror();
        snprintf(failure, sizeof failure, "%s", reason ? reason : "libpcap cannot be loaded");
        return NULL;
    }
#define RESOLVE(field, symbol) if (!resolve(library, #symbol, (void **)&api.field, opened)) return NULL;
    RESOLVE(open_offline_with_tstamp_precision, pcap_open_offline_with_tstamp_precision)
    RESOLVE(create, pcap_create)
    RESOLVE(set_snaplen, pcap_set_snaplen)
    RESOLVE(set_timeout, pcap_set_timeout)
    RESOLVE(set_immediate_mode, pcap_set_immediate_mode)
    RESOLVE(set_buffer_size, pcap_set_buffer_size)
    RESOLVE(activate, pcap_activate)
    RESOLVE(setnonblock, pcap_setnonblock)
    RESOLVE(datalink, pcap_datalink)
    RESOLVE(datalink_val_to_name, pcap_datalink_val_to_name)
    RESOLVE(compile, pcap_compile)
    RESOLVE(setfilter, pcap_setfilter)
    RESOLVE(freecode, pcap_freecode)
    RESOLVE(geterr, pcap_geterr)
    RESOLVE(next_ex, pcap_next_ex)
    RESOLVE(file, pcap_file)
    RESOLVE(stats, pcap_stats)
    RESOLVE(close, pcap_close)
#undef RESOLVE
    return &api;
}

const struct siotap_pcap_api *siotap_pcap_load(const char *path, char *error, size_t size) {
    pthread_mutex_lock(&lock);
    // A failed load is tried again on the next call (nothing is kept of it but the reason).
    if (loaded == NULL) loaded = load(path);
    const struct siotap_pcap_api *result = loaded;
    if (result == NULL && error != NULL && size > 0) snprintf(error, size, "%s", failure);
    pthread_mutex_unlock(&lock);
    return result;
}
