/*
 * output.c -- output files written atomically.
 *
 * A plan or trace goes into a temporary file beside its target
 * (".NAME.XXXXXX" in the same folder, so the rename stays within one file
 * system); every write is checked, the file flushed, fsynced and closed,
 * and only then renamed over the target.  A run that fails or is killed
 * leaves the old file as it was.  Targets that exist and are not regular
 * files (character devices such as /dev/stdout or /dev/full, pipes) cannot
 * be replaced by a rename and are written in place, errors still checked.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ir/ir.h"

int ir_output_open(IrOutput *o, const char *path, IrError *e)
{
	memset(o, 0, sizeof *o);
	struct stat st;
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return ir_fail(e, path, 0, "cannot write: is a directory");
	if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
		o->f = fopen(path, "w");
		if (!o->f)
			return ir_fail(e, path, 0, "cannot write: %s", strerror(errno));
		o->path = ir_xstrdup(path);
		return 0;
	}
	const char *slash = strrchr(path, '/');
	size_t dir = slash ? (size_t)(slash - path + 1) : 0;
	size_t n = strlen(path);
	o->tmp = ir_xmalloc(n + 16);
	snprintf(o->tmp, n + 16, "%.*s.%s.XXXXXX", (int)dir, path, path + dir);
	int fd = mkstemp(o->tmp);
	if (fd < 0) {
		int err = errno;
		free(o->tmp);
		o->tmp = NULL;
		return ir_fail(e, path, 0, "cannot write: %s", strerror(err));
	}
	/* mkstemp makes it 0600; give it the mode a new file would get */
	mode_t um = umask(0);
	umask(um);
	if (fchmod(fd, 0666 & ~um) != 0 || !(o->f = fdopen(fd, "w"))) {
		int err = errno;
		close(fd);
		unlink(o->tmp);
		free(o->tmp);
		o->tmp = NULL;
		return ir_fail(e, path, 0, "cannot write: %s", strerror(err));
	}
	o->path = ir_xstrdup(path);
	return 0;
}

static void release(IrOutput *o)
{
	free(o->path);
	free(o->tmp);
	memset(o, 0, sizeof *o);
}

int ir_output_commit(IrOutput *o, IrError *e)
{
	if (!o->f)
		return ir_fail(e, "", 0, "output file is not open");
	int err = 0;
	if (fflush(o->f) != 0 || ferror(o->f))
		err = errno ? errno : EIO;
	if (!err && o->tmp && fsync(fileno(o->f)) != 0)
		err = errno;
	if (fclose(o->f) != 0 && !err)
		err = errno ? errno : EIO;
	o->f = NULL;
	if (!err && o->tmp && rename(o->tmp, o->path) != 0)
		err = errno;
	if (err) {
		if (o->tmp)
			unlink(o->tmp);
		ir_fail(e, o->path, 0, "cannot write: %s", strerror(err));
		release(o);
		return -1;
	}
	release(o);
	return 0;
}

void ir_output_discard(IrOutput *o)
{
	if (o->f)
		fclose(o->f);
	if (o->tmp)
		unlink(o->tmp);
	release(o);
}
