#include <stdio.h>

int
main(void)
{
    puts("steerd " STEERD_VERSION);
    return 0;
}
