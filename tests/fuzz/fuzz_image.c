/* PNG and JPEG decoding, as the image-folder data sets and gan prepare do it: one decoder reused
 * from input to input (as each loader thread does), to gray and to RGB, then torchvision's Resize +
 * CenterCrop to two sizes (one odd) through a reused transform and the one-shot function. */
#include <stdint.h>
#include <stdlib.h>

#include "gan/data.h"
#include "gan/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static gan_image_decoder *decoder;
    static gan_transform *transform;
    if (!decoder && (gan_image_decoder_create(&decoder) != GAN_OK || gan_transform_create(16, &transform) != GAN_OK))
        abort();
    uint8_t out[16 * 16 * 3];
    for (int channels = 1; channels <= 3; channels += 2) {
        const uint8_t *pixels;
        int width, height;
        if (gan_image_decode(decoder, data, size, "fuzz image", channels, &pixels, &width, &height) != GAN_OK)
            continue;
        (void)gan_transform_apply(transform, pixels, width, height, channels, out);
        (void)gan_resize_center_crop(pixels, width, height, channels, 7, out);
    }
    return 0;
}
