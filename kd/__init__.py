"""The kd trainer (tokenizer, pretrain, finetune, distill, evaluate, predict)."""
