/*
 * fuzz.h -- what the libFuzzer targets share: the input as a file (the
 * loaders take paths) and stderr muted around verbs that print.
 */
#ifndef MESHPLAN_FUZZ_H
#define MESHPLAN_FUZZ_H

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Writes data to this process's scratch file and returns its path.  The
 * file is in /dev/shm (memory) where there is one, else /tmp; it is
 * unlinked and created anew each time, since rewriting a file in place
 * makes ext4 flush it to disk on close (auto_da_alloc), which cost more
 * than the loads themselves. */
static inline const char *fuzz_file(const uint8_t *data, size_t size)
{
	static char path[64];
	if (!path[0])
		snprintf(path, sizeof path, "%s/meshplan-fuzz-%d.xml",
			 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp", (int)getpid());
	unlink(path);
	FILE *f = fopen(path, "wb");
	if (!f)
		abort();
	if (size && fwrite(data, 1, size, f) != size)
		abort();
	if (fclose(f))
		abort();
	return path;
}

/* The input as a NUL-terminated string (malloc'd). */
static inline char *fuzz_string(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (!s)
		abort();
	memcpy(s, data, size);
	s[size] = 0;
	return s;
}

/* Points stderr at /dev/null (mute = 1) or back (mute = 0). */
static inline void fuzz_mute_stderr(int mute)
{
	static int saved = -1;
	fflush(stderr);
	if (mute) {
		if (saved < 0)
			saved = dup(2);
		int null = open("/dev/null", O_WRONLY);
		dup2(null, 2);
		close(null);
	} else if (saved >= 0) {
		dup2(saved, 2);
	}
}

#endif
