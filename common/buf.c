#include "buf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/*  The first allocation: most buffers hold a row or a few. */
#define S_MIN_CAP 256

struct odp_buf_t {
    char *data; /* cap bytes: size of data, then the NUL */
    size_t size;
    size_t cap;
};

odp_buf_t *odp_buf_new(void)
{
    odp_buf_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->data = malloc(S_MIN_CAP);
    if (!self->data) {
        free(self);
        return NULL;
    }
    self->cap = S_MIN_CAP;
    self->data[0] = '\0';
    return self;
}

void odp_buf_destroy(odp_buf_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->data);
    free(*self_p);
    *self_p = NULL;
}

char *odp_buf_reserve(odp_buf_t *self, size_t extra)
{
    /*  size + extra + 1 (the NUL) must fit in size_t before it is compared. */
    if (extra > SIZE_MAX - 1 - self->size)
        return NULL;
    size_t need = self->size + extra + 1;
    if (need > self->cap) {
        size_t cap = self->cap;
        while (cap < need)
            cap = cap > SIZE_MAX / 2 ? need : cap * 2;
        char *data = realloc(self->data, cap);
        if (!data)
            return NULL;
        self->data = data;
        self->cap = cap;
    }
    return self->data + self->size;
}

void odp_buf_extend(odp_buf_t *self, size_t n)
{
    self->size += n;
    self->data[self->size] = '\0';
}

int odp_buf_append(odp_buf_t *self, const void *data, size_t len)
{
    char *end = odp_buf_reserve(self, len);
    if (!end)
        return -1;
    if (len)
        memcpy(end, data, len);
    odp_buf_extend(self, len);
    return 0;
}

void odp_buf_truncate(odp_buf_t *self, size_t size)
{
    if (size < self->size) {
        self->size = size;
        self->data[size] = '\0';
    }
}

void odp_buf_consume(odp_buf_t *self, size_t n)
{
    if (n >= self->size) {
        odp_buf_reset(self);
        return;
    }
    memmove(self->data, self->data + n, self->size - n);
    odp_buf_truncate(self, self->size - n);
}

void odp_buf_reset(odp_buf_t *self)
{
    self->size = 0;
    self->data[0] = '\0';
}

char *odp_buf_data(odp_buf_t *self)
{
    return self->data;
}

size_t odp_buf_size(const odp_buf_t *self)
{
    return self->size;
}
