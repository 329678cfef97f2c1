// soma/gen.h — generative and unsupervised learning: upsampling, GAN training and the DCGAN,
// image grids, autoencoders and the VAE, k-means with clustering scores and PCA, the Fréchet
// distance with classifier features, line and scatter plots.
#pragma once

#include "soma/gen/autoencoder.h"
#include "soma/gen/cluster.h"
#include "soma/gen/frechet.h"
#include "soma/gen/gan.h"
#include "soma/gen/plot.h"
#include "soma/gen/upsample.h"
