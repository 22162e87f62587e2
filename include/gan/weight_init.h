/* The weight initialisation schemes: chosen in the config (model.init), applied by the layers
 * (src/nn/init.c). A header of its own so that the config needs nothing else of src/nn. */
#ifndef GAN_WEIGHT_INIT_H
#define GAN_WEIGHT_INIT_H

typedef enum gan_weight_init {
    GAN_INIT_DCGAN,   /* conv/convt/linear weight N(0, 0.02), BN weight N(1, 0.02), biases 0 */
    GAN_INIT_XAVIER,  /* xavier_uniform_ (gain 1) weights, BN weight 1, biases 0 */
    GAN_INIT_PYTORCH  /* PyTorch's reset_parameters(): U(+-1/sqrt(fan_in)) weights and biases */
} gan_weight_init;

#endif
