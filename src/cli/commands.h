#ifndef GAN_CLI_COMMANDS_H
#define GAN_CLI_COMMANDS_H

/* Each returns the process exit status: 0 on success, non-zero with one message on stderr. */
int gan_cmd_info(int argc, char **argv);
int gan_cmd_selftest(int argc, char **argv);
int gan_cmd_train(int argc, char **argv);
int gan_cmd_sample(int argc, char **argv);
int gan_cmd_export(int argc, char **argv);
int gan_cmd_prepare(int argc, char **argv);
int gan_cmd_bench(int argc, char **argv);
int gan_cmd_fid(int argc, char **argv);

#endif
