import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from riskrl.embedded.model import ModelConfig, build_model, init_model, load_pretrained, num_params
from riskrl.embedded.tokenizer import CHARS, SPECIALS, build_tokenizer
from riskrl.evaluation.sampling import render_prompt


def test_tokenizer_round_trip(tmp_path):
    tok = build_tokenizer()
    assert len(tok) == len(SPECIALS) + len(CHARS)
    for text in ["123*45=", "007*03=05535", "1 + 2 = 3", "(9/3)-1.5"]:
        ids = tok(text)["input_ids"]
        assert ids[0] == tok.bos_token_id and len(ids) == len(text) + 1  # one token per character
        assert tok.decode(ids, skip_special_tokens=True) == text
    assert tok.convert_ids_to_tokens(tok("12*3=")["input_ids"]) == ["<bos>", "1", "2", "*", "3", "="]
    assert tok("x")["input_ids"][1] == tok.unk_token_id
    assert tok.decode([tok.convert_tokens_to_ids("5"), tok.eos_token_id]) == "5<eos>"
    tok.save_pretrained(tmp_path)
    again = AutoTokenizer.from_pretrained(tmp_path)  # loads like a Hub tokenizer
    assert again("123*45=")["input_ids"] == tok("123*45=")["input_ids"]
    assert again.padding_side == "left" and again.eos_token == "<eos>" and again.pad_token_id == 0
    batch = again(["1*2=", "12*34="], padding=True)
    assert batch["input_ids"][0][:2] == [again.pad_token_id] * 2 and batch["attention_mask"][0][:2] == [0, 0]


def test_render_prompt_is_the_user_message_without_a_chat_template():
    tok = build_tokenizer()
    assert render_prompt([{"role": "user", "content": "12*34="}], tok) == "12*34="
    assert render_prompt("12*34=", tok) == "12*34="


def test_default_model_size_and_hub_style_loading(tmp_path):
    tok = build_tokenizer()
    model = build_model(ModelConfig(), tok)
    assert 0.8e6 < num_params(model) < 0.9e6  # about 0.86 M parameters
    assert type(model).__name__ == "Qwen2ForCausalLM"
    small = ModelConfig(
        hidden_size=32, num_layers=1, num_heads=2, num_kv_heads=1, intermediate_size=64, arch="llama", seed=3
    )
    out = init_model(small, tmp_path / "m")
    m = AutoModelForCausalLM.from_pretrained(out)
    t = AutoTokenizer.from_pretrained(out)
    assert type(m).__name__ == "LlamaForCausalLM" and len(t) == m.config.vocab_size
    m2, _ = load_pretrained(out)
    for a, b in zip(m.parameters(), m2.parameters(), strict=True):
        assert torch.equal(a, b)
    # seeded initialisation
    again = build_model(small, tok)
    assert all(torch.equal(a, b) for a, b in zip(again.parameters(), m.parameters(), strict=True))


def test_bad_model_config():
    import pytest

    with pytest.raises(ValueError, match="unknown arch 'gpt2'"):
        ModelConfig(arch="gpt2")
    with pytest.raises(ValueError, match="num_heads"):
        ModelConfig(hidden_size=100, num_heads=3)
    with pytest.raises(FileNotFoundError, match="no model at"):
        load_pretrained("/nonexistent/dir")
