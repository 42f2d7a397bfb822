/* d01.e2: a compiled tool, so the builder stage needs a compiler the runtime stage must not carry. */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 1000000;
  double s = 0.0;
  for (long i = 1; i <= n; ++i) s += 1.0 / (double)i;
  printf("fastsum n=%ld harmonic=%.6f\n", n, s);
  return 0;
}
