/*
 * lib/string.h - the C string and memory functions the kernel needs.
 *
 * The kernel has no libc, so lib/string.c provides them; in the hosted
 * build (SPANHEAP_HOSTED) this header is simply the C library's.
 */
#ifndef LIB_STRING_H
#define LIB_STRING_H

#ifdef SPANHEAP_HOSTED
#include <string.h>
#else
#include <stddef.h>

void *memset(void *dst, int c, size_t n);
void *memcpy(void *restrict dst, const void *restrict src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
int memcmp(const void *a, const void *b, size_t n);
void *memchr(const void *s, int c, size_t n);
size_t strlen(const char *s);
size_t strnlen(const char *s, size_t max);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
char *strchr(const char *s, int c);
char *strstr(const char *haystack, const char *needle);
size_t strlcpy(char *dst, const char *src, size_t size);
#endif

#endif
