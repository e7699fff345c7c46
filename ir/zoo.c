/*
 * zoo.c -- the models and clusters that ship with meshplan (the .xml files
 * of models/ and clusters/ under ir_data_dir()): their names, for `meshplan list`
 * and for "did you mean" when a name is not found.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ir.h"

static int cmp_name(const void *a, const void *b)
{
	return strcmp((const char *)a, (const char *)b);
}

int ir_zoo_names(const char *kind, char (*names)[IR_ZOO_NAME], int max)
{
	char dir[1024];
	snprintf(dir, sizeof dir, "%s/%s", ir_data_dir(), kind);
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	int n = 0;
	for (struct dirent *ent; (ent = readdir(d)) && n < max;) {
		size_t len = strlen(ent->d_name);
		if (len <= 4 || len - 4 >= IR_ZOO_NAME || strcmp(ent->d_name + len - 4, ".xml"))
			continue;
		/* plan.rng and friends are schemas; only .xml files are zoo entries */
		memcpy(names[n], ent->d_name, len - 4);
		names[n][len - 4] = 0;
		n++;
	}
	closedir(d);
	qsort(names, (size_t)n, sizeof names[0], cmp_name);
	return n;
}

const char *ir_zoo_suggest(const char *kind, const char *name, char *buf, size_t len)
{
	char names[IR_ZOO_MAX][IR_ZOO_NAME];
	const char *ptr[IR_ZOO_MAX];
	int n = ir_zoo_names(kind, names, IR_ZOO_MAX);
	for (int i = 0; i < n; i++)
		ptr[i] = names[i];
	return ir_suggest(name, ptr, n, buf, len);
}
